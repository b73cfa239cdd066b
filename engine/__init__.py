"""Rules-as-code policy engine: parse, check, compile and explain licensing policy."""
