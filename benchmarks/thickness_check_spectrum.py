"""How much DensityMap's thickness check moves when the beam is not the one the header names.

The check (:mod:`monai_bac.ops.thickness_check`) turns the air-to-fat contrast into millimetres
through the SpekPy spectrum of the header's KVP, anode and filter. The realistic phantom is made
with the same spectra, so its figures cannot show what a real tube whose spectrum differs does.
This script makes the contrast of a breast of each thickness with the spectrum of one kVp and
reads it with the spectra of kVps 1 and 2 kV off (a harder or softer beam than assumed: a kVp
error, or filtration the model leaves out), for the three tube set-ups the phantom's vendors use.

Usage::

    python benchmarks/thickness_check_spectrum.py [--thickness 40 70] [--offsets -2 -1 1 2]
"""

from __future__ import annotations

import argparse

import numpy as np

from monai_bac.ops.thickness_check import SKIN_MM, thickness_curve
from monai_bac.physics import transmitted_beam

SETUPS = ((29.0, "W", "Rh"), (28.0, "Mo", "Mo"), (31.0, "W", "Ag"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--thickness", type=float, nargs="+", default=(40.0, 70.0), help="true thicknesses, mm")
    ap.add_argument("--offsets", type=float, nargs="+", default=(-2.0, -1.0, 1.0, 2.0),
                    help="kV between the beam that made the contrast and the beam that reads it")
    args = ap.parse_args(argv)
    print("made at | true H (mm) | " + " | ".join(f"read as {d:+g} kV" for d in args.offsets))
    for kvp, anode, filt in SETUPS:
        made = transmitted_beam(kvp, anode, filt)
        for h in args.thickness:
            contrast = float(made.log_signal(0.0) - made.log_signal(h - 2 * SKIN_MM, 2 * SKIN_MM))
            cells = []
            for d in args.offsets:
                grid, curve = thickness_curve(transmitted_beam(kvp + d, anode, filt))
                cells.append(f"{100 * (np.interp(contrast, curve, grid) / h - 1):+.1f} %")
            print(f"{kvp:g} kV {anode}/{filt} | {h:g} | " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
