"""Every behaviour of evil-py, by the name the params give it."""

from attacks import busy_loop, env, error, lazy_import, log_flood, malformed_output, memory_bomb, network, read_passwd, schema_change, sleep

ATTACKS = {
    # Failing in the guest's own code.
    "error": error.run,
    "loop": busy_loop.run,
    "memory-bomb": memory_bomb.run,
    "sleep": sleep.run,
    "log-flood": log_flood.run,
    "lazy-import": lazy_import.run,
    # Reaching out of the sandbox.
    "read-passwd": read_passwd.run,
    "network": network.run,
    "env": env.run,
    # Emitted output.
    "malformed-output": malformed_output.run,
    "schema-change": schema_change.run,
}
