#!/usr/bin/env python3
"""Copy the blood-cell images scripts/gpu-check.sh needs into a folder a lent GPU machine can be sent.

    scripts/gpu-data.py OUT [--data DIR]

A lent machine gets the checkout alone, not ../shared. This copies, keeping the
dataset2-master/images/SPLIT/CLASS layout:
  TRAIN        125 images a class: exactly the ones the GPU training tests pick
               (tests/train/real_images.hpp: data::spread_per_class(TRAIN, 125),
               the same evenly spaced choice over the sorted file names)
  TEST         40 a class, evenly spread (train_bloodcells --limit 40)
  TEST_SIMPLE  all of it (71 images)
about 7 MB. Give OUT to gpu-check.sh --data, keep it out of git (.git/info/exclude),
and name it in the device call's carry. DIR defaults to ../shared/data/blood-cells.
"""

import argparse
import os
import shutil
import sys

PER_CLASS = {"TRAIN": 125, "TEST": 40, "TEST_SIMPLE": None}


def spread(files, count):
    """data::spread_per_class's choice: files[j * len / take] for j < take."""
    take = len(files) if count is None else min(count, len(files))
    return [files[j * len(files) // take] for j in range(take)]


def main(argv):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--data", default=os.path.join(root, "..", "shared", "data", "blood-cells"))
    args = parser.parse_args(argv)
    source = os.path.join(args.data, "dataset2-master", "images")
    if not os.path.isdir(source):
        sys.exit(f"gpu-data.py: no dataset2-master/images in '{args.data}'")
    copied = 0
    for split, count in PER_CLASS.items():
        for label in sorted(os.listdir(os.path.join(source, split))):
            folder = os.path.join(source, split, label)
            target = os.path.join(args.out, "dataset2-master", "images", split, label)
            os.makedirs(target, exist_ok=True)
            for name in spread(sorted(os.listdir(folder)), count):
                shutil.copyfile(os.path.join(folder, name), os.path.join(target, name))
                copied += 1
    print(f"gpu-data.py: {copied} images in {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
