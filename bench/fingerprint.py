"""How often the content check (``provenance.fingerprint``) rejects its own picture after an
edit, and how often it takes another picture for it, over the watermark benchmark's attacks.

    OMP_NUM_THREADS=1 python -m bench.fingerprint [--count 48] [--side 512]

The images are the watermark benchmark's (``bench.watermark_robustness.image_set``: generated
product shots, gradients, textures and patterns, and crops of scikit-image's photographs),
unmarked: the mark (PSNR about 39 dB, high frequencies) moves no low-frequency DCT coefficient
that the descriptor keeps enough to matter, and leaving it out keeps this bench independent of
the watermark's cost. Each attack of ``bench.watermark_robustness.CASES``, plus an off-centre 10% crop, a
mirror and a mirror after JPEG, is applied to every image:

* false reject: the attacked image does not match its own master's descriptor;
* false match: it matches the descriptor of another picture of the set (every other one is tried).
  The set holds several random crops (each at least half the side) of the same photograph: a match
  between two of those is counted apart ("same photo"), as they show much of the same scene.

The similarities (cosine) are printed as well: a match needs ``MATCH_SIMILARITY``. Measured: the
only false matches are between the set's synthetic gradients (pictures that are a smooth luma ramp
and nothing else look alike to a luma descriptor); no photograph, texture, pattern or product shot
matched another picture.
"""

from __future__ import annotations

import argparse
import statistics
import time

from PIL import Image, ImageOps

from bench.watermark_robustness import CASES, Case, encoded, image_set
from provenance.fingerprint import MATCH_SIMILARITY, image_fingerprint, image_probes, probes_similarity


def corner_crop(image: Image.Image, share: float) -> Image.Image:
    """Cut ``share`` of the width and of the height away, all from the top and the left."""
    dx, dy = round(image.width * share), round(image.height * share)
    return image.crop((dx, dy, image.width, image.height))


EXTRA = (
    Case("corner crop 10%", lambda im: corner_crop(im, 0.10), None),
    Case("mirror", ImageOps.mirror, None),
    Case("mirror + JPEG q75", lambda im: encoded(ImageOps.mirror(im), "JPEG", quality=75), None),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=48, help="images in the set")
    parser.add_argument("--side", type=int, default=512, help="their side, px")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()

    started = time.perf_counter()
    named = image_set(args.count, args.side, args.seed)
    masters = [image for _, image in named]
    generated = {"product", "gradient", "texture", "pattern"}
    sources = [name if name not in generated else f"{name}-{index}" for index, (name, _) in enumerate(named)]
    stored = [image_fingerprint(master) for master in masters]
    print(
        f"{len(masters)} {args.side}x{args.side} images; a match needs a cosine similarity of at least "
        f"{MATCH_SIMILARITY}"
    )
    print(
        f"{'attack':32} {'false reject':>13} {'false match':>12} {'own p50/min':>12} {'other max':>10} "
        f"{'same photo':>11}"
    )
    total_rejects = total_own = total_matches = total_pairs = total_same = total_same_pairs = 0
    for case in (*CASES, *EXTRA):
        own: list[float] = []
        nearest_other: list[float] = []
        rejects = matches = pairs = same = same_pairs = 0
        for index, master in enumerate(masters):
            attacked = case.attack(master)
            probes = image_probes(attacked)
            similarities = [probes_similarity(probes, fingerprint) for fingerprint in stored]
            mine = similarities[index]
            assert mine is not None
            own.append(mine)
            rejects += mine < MATCH_SIMILARITY
            others = [d for j, d in enumerate(similarities) if sources[j] != sources[index] and d is not None]
            crops = [
                d for j, d in enumerate(similarities) if j != index and sources[j] == sources[index] and d is not None
            ]
            nearest_other.append(max(others))
            matches += sum(d >= MATCH_SIMILARITY for d in others)
            pairs += len(others)
            same += sum(d >= MATCH_SIMILARITY for d in crops)
            same_pairs += len(crops)
        total_rejects, total_own = total_rejects + rejects, total_own + len(masters)
        total_matches, total_pairs = total_matches + matches, total_pairs + pairs
        total_same, total_same_pairs = total_same + same, total_same_pairs + same_pairs
        print(
            f"{case.name:32} {rejects / len(masters):13.1%} {matches / pairs:12.3%} "
            f"{statistics.median(own):>6.2f}/{min(own):<5.2f} {max(nearest_other):>10.2f} "
            f"{same / max(1, same_pairs):11.1%}"
        )
    print(
        f"{'all attacks':32} {total_rejects / total_own:13.1%} {total_matches / total_pairs:12.3%}"
        f"{'':24}{total_same / max(1, total_same_pairs):11.1%}"
    )
    print(
        f"({total_own} own comparisons, {total_pairs} with other pictures, {total_same_pairs} with other crops of "
        f"the same photograph; {time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
