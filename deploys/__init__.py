"""dlrig's packaged deploys: one ``@deploy`` per module, each with prefixed ``DEFAULTS``."""
