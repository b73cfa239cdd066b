"""Tool commands: each module defines a click command named `command`; `engine.cli` registers them all."""
