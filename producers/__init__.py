"""What puts events on the bus from outside OSS and BSS: the network's probes (simulated here),
and later mediation and protocol receivers."""
