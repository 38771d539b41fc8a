"""Job actions: the U/V/🔄 and single-image buttons (`DynamicItem`s), the Custom Zoom modal, and
`JobActions`, what a command or click does once it is accepted."""
