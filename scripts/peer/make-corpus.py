#!/usr/bin/env python3
"""A corpus of real English paragraphs of natural lengths, for the corpus benchmarks: every <p>
paragraph of the Rust documentation that rustup installs with a toolchain (the rust-docs
component: The Rust Programming Language, the Reference, the standard library's API docs, the
Cargo, rustc and Rustdoc books; MIT / Apache-2.0), whitespace collapsed, each distinct paragraph
once, in file order. With 1.95's docs: 58,516 paragraphs, 8.1 MB, median 11 words, longest 204.

    scripts/peer/make-corpus.py                      # -> target/corpus/rust-docs.jsonl
    scripts/peer/make-corpus.py --docs DIR --out FILE

One JSON string per line (`streampool embed --format-in jsonl`). Needs only Python's standard
library and a toolchain's docs (`rustup component add rust-docs`).
"""
import argparse
import html.parser
import json
import os
import re
import statistics
import subprocess


class Paragraphs(html.parser.HTMLParser):
    """The text of each top-level <p>, scripts and styles left out."""

    def __init__(self):
        super().__init__()
        self.depth, self.skip, self.buf, self.out = 0, 0, [], []

    def handle_starttag(self, tag, attrs):
        if tag == "p":
            self.depth += 1
        if tag in ("script", "style"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        if tag == "p" and self.depth:
            self.depth -= 1
            if self.depth == 0:
                text = re.sub(r"\s+", " ", "".join(self.buf)).strip()
                self.buf = []
                if text:
                    self.out.append(text)

    def handle_data(self, data):
        if self.depth and not self.skip:
            self.buf.append(data)


def default_docs():
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True,
                             check=True).stdout.strip()
    return os.path.join(sysroot, "share", "doc", "rust", "html")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", help="the rust-docs HTML folder (default: the active toolchain's)")
    ap.add_argument("--out", default="target/corpus/rust-docs.jsonl")
    args = ap.parse_args()
    docs = args.docs or default_docs()
    if not os.path.isdir(docs):
        raise SystemExit(f"no documentation at {docs}: rustup component add rust-docs")
    seen, texts = set(), []
    for folder, dirs, files in sorted(os.walk(docs)):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".html"):
                continue
            parser = Paragraphs()
            with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
                parser.feed(f.read())
            for text in parser.out:
                if text not in seen:
                    seen.add(text)
                    texts.append(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for text in texts:
            f.write(json.dumps(text) + "\n")
    words = sorted(len(t.split()) for t in texts)
    print(f"{args.out}: {len(texts)} paragraphs, {os.path.getsize(args.out) / 1e6:.1f} MB, "
          f"median {statistics.median(words):.0f} words, longest {words[-1]}")


if __name__ == "__main__":
    main()
