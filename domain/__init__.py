"""The pure core: decide what events a command yields, fold events into state. No I/O."""
