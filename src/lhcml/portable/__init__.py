"""Portable model formats: ONNX export of torch modules and ONNX Runtime inference
(:mod:`lhcml.portable.onnx`), for running lhcml models outside Python (ACTS and Athena
run ML through ONNX Runtime) and as a faster CPU backend."""
