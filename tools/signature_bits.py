"""Near-duplicate decisions with 16-bit and 8-bit min-hash values, over every pair within three corpora.

    .venv/bin/python tools/signature_bits.py

The index keeps the low 8 bits of each min-hash (``neardup.low8``) and takes
chance agreement out of the estimate. This checks what that changes against
16 bits: for every pair of texts within the shared stream's articles, the
breaking-news ticker's lines and the topic set's articles, the number of
equal slots in 16 and in 8 bits, the decision at the threshold with 16 bits,
with 8 bits as they are and with 8 bits corrected (what the index does), and
the exact Jaccard of each pair whose decision changes (docs/dedup.md).
"""

from __future__ import annotations

import numpy as np

from common import SHARED, jsonl
from newsstream.dedup.neardup import NearDupIndex, estimate_jaccard, jaccard, shingles, tokens
from newsstream.text.normalize import normalize_text

CORPORA = {
    "stream": ("ant_multisource_stream", "stream.jsonl"),
    "ticker": ("aja_breaking_ticker", "ticker.jsonl"),
    "topics": ("ant_multisource_topics", "train.jsonl"),
}


def main() -> None:
    index = NearDupIndex()
    cfg = index.config
    k = cfg.num_perm

    def shingle_size(text: str) -> int:
        return cfg.short_shingle_words if len(tokens(text)) < cfg.short_text_words else cfg.shingle_words

    # The smallest number of equal 8-bit slots the index's estimate puts at or above the threshold.
    need8 = next(m for m in range(k + 1) if estimate_jaccard(np.arange(k), np.r_[np.arange(m), np.arange(m, k) + 1]) >= cfg.threshold)
    totals = {"pairs": 0, "duplicates_16": 0, "duplicates_8_raw": 0, "duplicates_8": 0}
    changed = []
    for name, (folder, file) in CORPORA.items():
        texts = dict.fromkeys(normalize_text((r.get("title") or "") + "\n" + (r.get("text") or ""))
                              for r in jsonl(SHARED / folder / file))
        # the full 32-bit signature of each text the index would sign, shingled as the index shingles it
        sigs = [(t, index._sign(shingles(t, shingle_size(t)))) for t in texts if index.signature_of(t) is not None]
        s16 = np.stack([np.asarray(s, dtype=np.uint32) for _, s in sigs]).astype(np.uint16)
        s8 = s16.astype(np.uint8)
        for i in range(len(sigs) - 1):
            m16 = (s16[i] == s16[i + 1:]).sum(1)
            m8 = (s8[i] == s8[i + 1:]).sum(1)
            d16, d8raw, d8 = m16 >= cfg.threshold * k, m8 >= cfg.threshold * k, m8 >= need8
            totals["pairs"] += len(m16)
            totals["duplicates_16"] += int(d16.sum())
            totals["duplicates_8_raw"] += int(d8raw.sum())
            totals["duplicates_8"] += int(d8.sum())
            for j in np.nonzero((d16 != d8) | (d16 != d8raw))[0]:
                a, b = sigs[i][0], sigs[i + 1 + j][0]
                size = shingle_size(a)
                changed.append({"corpus": name, "equal_16": int(m16[j]), "equal_8": int(m8[j]),
                                "exact_jaccard": round(jaccard(shingles(a, size), shingles(b, size)), 3)})
        print(f"{name}: {len(sigs)} texts", flush=True)
    print(totals)
    print(f"8-bit slots needed for {cfg.threshold}: {need8} of {k}")
    for row in changed:
        print(row)


if __name__ == "__main__":
    main()
