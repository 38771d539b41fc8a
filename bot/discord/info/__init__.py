"""Information commands for members: help, queue, a job's details, `/prefer`."""
