"""Actor -> NIR hub -> Loihi 2 fixed point, Lava graph, netx HDF5, ONNX; the deploy bundle."""
