"""`driftline demo`: the model loop on the embedded local control plane, narrated as it happens."""
