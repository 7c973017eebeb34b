"""dlrig's pyinfra facts: ``pyinfra <inventory> fact facts.<module>.<Fact>``."""
