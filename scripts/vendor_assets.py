"""Copy the pinned site JavaScript from js/node_modules into vendor/ for the book build.

The book refers to these files instead of CDNs, so the built site works
offline. Only what the pages load (directly or lazily) is copied.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "js" / "node_modules"
DEST = ROOT / "vendor" / "assets"

# (source folder inside node_modules, destination folder inside vendor/, glob patterns)
ASSETS = [
    (
        "mathjax/es5",
        "mathjax",
        [
            "tex-mml-chtml.js",
            "input/**/*.js",
            "output/chtml/**/*",
            "output/chtml.js",
            "a11y/**/*.js",
            "ui/**/*.js",
            "sre/**/*",
            "adaptors/**/*.js",
        ],
    ),
    ("requirejs", "requirejs", ["require.js"]),
    (
        "@jupyter-widgets/html-manager/dist",
        "html-manager",
        [
            "embed-amd.js",
            "*.woff",
            "*.woff2",
            "*.ttf",
            "*.eot",
            "*.svg",
        ],
    ),
]


def main() -> int:
    if not MODULES.is_dir():
        print("js/node_modules is missing: run `npm ci --prefix js` first", file=sys.stderr)
        return 1
    if DEST.exists():  # start clean so removed assets do not linger
        shutil.rmtree(DEST)
    n = 0
    for src, dst, patterns in ASSETS:
        base = MODULES / src
        if not base.is_dir():
            print(f"missing {base}: is js/package-lock.json installed?", file=sys.stderr)
            return 1
        for pattern in patterns:
            for path in base.glob(pattern):
                if path.is_file():
                    target = DEST / dst / path.relative_to(base)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
                    n += 1
    print(f"vendored {n} files into {DEST.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
