"""IPTC urgency (1 = most urgent ... 9 = least), by rule.

The rule, in order (the first that applies wins; never below 1):

* **ticker line** (a «عاجل» breaking line): **3**; **2** when it reports
  casualties, an attack, an explosion, a disaster or a declaration of war
  (``_FLASH`` lexicon below); a line that continues the previous one gets the
  same rule.
* **article**: **4** for hard news: its best topic is politics, conflict,
  crime, disaster, economy or health, *or* it matches the flash lexicon in its
  title or first 300 characters of body; **6** for soft news: arts and
  culture, sport, lifestyle, human interest; **5** otherwise; **+1**
  (less urgent) for long-form text over 1,200 words (features, analysis).

Levels 1 (reserved for an editor's flash) and 7-9 (archive material, not
produced by a live pipeline) are never assigned automatically.
"""

from __future__ import annotations

import re

__all__ = ["urgency", "URGENCY_VERSION"]

URGENCY_VERSION = "urgency-rule-1"

_FLASH = re.compile(
    r"(?:مقتل|قتلى|قتيل|شهداء|استشهاد|اغتيال|انفجار|تفجير|غارة|غارات|قصف|هجوم|اشتباك|زلزال|فيضان|إعصار|حريق|تحطم|"
    r"إطلاق نار|اطلاق نار|صواريخ|صاروخ|إعلان الحرب|حالة الطوارئ|انقلاب|"
    r"\bkilled\b|\bdead\b|\bexplosion\b|\bblast\b|\bairstrike|\battack|\bearthquake\b|\bshooting\b|\bcoup\b|\bmissile)",
    re.IGNORECASE,
)
_HARD = {"medtop:11000000", "medtop:16000000", "medtop:02000000", "medtop:03000000", "medtop:04000000", "medtop:07000000"}
_SOFT = {"medtop:01000000", "medtop:15000000", "medtop:10000000", "medtop:08000000"}


def urgency(kind: str, text: str, title: str = "", top_topic: str | None = None, words: int = 0) -> int:
    if kind == "ticker":
        return 2 if _FLASH.search(text) else 3
    head = f"{title}\n{text[:300]}"
    if top_topic in _HARD or _FLASH.search(head):
        level = 4
    elif top_topic in _SOFT:
        level = 6
    else:
        level = 5
    if words > 1200:
        level += 1
    return level
