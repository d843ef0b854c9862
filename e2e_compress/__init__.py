"""e2e-compress: Balle, Laparra & Simoncelli (ICLR 2017) in TensorFlow 2.14.

The package imports without parsing flags. Heavy modules (TensorFlow) are
imported by the submodules that need them, so `import e2e_compress` is cheap.
"""

__version__ = "0.1.0"
