"""An example mmea-bench plugin: a degree-profile encoder, and GCN-Align with it as an extra modality."""
