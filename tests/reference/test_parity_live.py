#!/usr/bin/python3
"""Live parity on the reference configuration (img 256, enc 128 x 12, dec 64 x 8): our
PyTorch reference computes, in float64, the outputs, losses and every gradient of a
batch of 2 (one item with all context, one with context dropped beyond margin 0); the C
engine (test-parity) must match them within the tolerances stated in test-parity.c.
Skips (77) when torch is not installed. Usage: test_parity_live.py TEST_PARITY"""
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
try:
    import torch  # noqa: F401
except ImportError as e:
    print("skip: PyTorch not available (%s); the committed fixture is tested instead" % e)
    sys.exit(77)

with tempfile.TemporaryDirectory(prefix="cs-parity-") as tmp:
    subprocess.run([sys.executable, os.path.join(here, "make_fixtures.py"), "--config",
                    "reference", "--batch", "2", "--adam-steps", "0", "--out", tmp],
                   check=True)
    rc = subprocess.run([sys.argv[1], "--no-adam", os.path.join(tmp, "reference.safetensors")]
                        ).returncode
sys.exit(rc)
