"""`affordml bench sharing`: what each GPU sharing mode gives N jobs at a time, measured, and the mode to choose."""
