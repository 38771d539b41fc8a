"""Test support: real servers on loopback that stand in for what the tests cannot reach."""
