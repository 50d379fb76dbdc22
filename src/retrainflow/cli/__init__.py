"""The ``retrainflow`` command line: ``main`` wires one module per command group."""
