"""Pure logic shared by the deploys: no pyinfra state, unit-tested alone."""
