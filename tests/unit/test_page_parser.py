"""Tests for newsstream.text.page (the page parser)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pydantic
import pytest

from newsstream.contract.ids import stable_hash
from newsstream.text.normalize import normalize_text
from newsstream.text.page import ParsedPage, ParsedTickerLine, parse_page

REPO = Path(__file__).parents[2]
SEED = Path(__file__).parents[3] / "shared" / "seeds" / "000_d53218aacc3a3954.txt"
SAMPLES = REPO / "services" / "newsstream" / "samples"

THREAD_ID_RE = re.compile(r"^th_[0-9a-f]{16}$")

ARTICLE = [
    "اختتمت اللجنة الفنية اجتماعاتها اليوم بعد ثلاثة أيام من النقاشات حول خطة العمل.",
    "وأوضح رئيس اللجنة أن التوصيات ستُرفع إلى الجهات المختصة خلال الأسبوع المقبل.",
]


def ticker_block(*items: tuple[str, str]) -> str:
    """The seed layout: "-", time, item line, for each (time, line)."""
    return "\n".join(f"-\n{time}\n{line}" for time, line in items)


def summary(page: ParsedPage) -> list[tuple[str, str | None, bool]]:
    return [(t.time, t.attribution, t.continues_previous) for t in page.ticker]


def groups(page: ParsedPage) -> list[list[str]]:
    """Ticker times grouped by thread_id, in page order."""
    by_thread: dict[str, list[str]] = {}
    for t in page.ticker:
        by_thread.setdefault(t.thread_id, []).append(t.time)
    return list(by_thread.values())


def expected_thread_id(attribution: str | None, oldest_time: str, oldest_text: str) -> str:
    return "th_" + stable_hash(normalize_text(attribution or ""), oldest_time, normalize_text(oldest_text))[:16]


# --------------------------------------------------------------------------
# The seed page
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def seed_page(seed_text: str) -> ParsedPage:
    return parse_page(seed_text)


def test_seed_article(seed_text: str, seed_page: ParsedPage) -> None:
    lines = seed_text.splitlines()
    assert len(seed_page.articles) == 1
    article = seed_page.articles[0]
    assert article.title == ""  # the first line is a full sentence, not a headline
    assert article.paragraphs == lines[:6]  # original letters and diacritics kept
    assert article.body == "\n\n".join(lines[:6])


def test_seed_ticker(seed_page: ParsedPage) -> None:
    assert summary(seed_page) == [
        ("22:35", "الخارجية التركية", False),
        ("22:34", "الخارجية التركية", True),
        ("22:04", "تلغراف عن مسؤول إيراني رفيع", False),
        ("22:03", "تلغراف عن مسؤول إيراني رفيع", True),
        ("21:52", "الرئيس الإيراني", False),
        ("21:17", "حماس", False),
    ]
    texts = [t.text for t in seed_page.ticker]
    assert texts[0] == "إسرائيل تلعب دور المزعزع الاستراتيجي في المنطقة مما يؤدي إلى الفوضى ويغذي الإرهاب"
    # continuation markers ("- " and "-") are stripped from the text
    assert texts[1] == "التساؤل واجب عن سبب انزعاج إسرائيل من تطورات سوريا ولبنان التي تحمل آمالا كبيرة للاستقرار"
    assert texts[3] == "طهران تعيد تقويم سياساتها تجاه وكلائها بالمنطقة وقررت سحب قواتها من اليمن ووقف دعمها للحوثيين"
    # quotes around the attribution are removed, the text is what follows the colon
    assert texts[5].startswith("لتكن الأيام المقبلة")


def test_seed_threads(seed_page: ParsedPage) -> None:
    assert groups(seed_page) == [["22:35", "22:34"], ["22:04", "22:03"], ["21:52"], ["21:17"]]
    t = seed_page.ticker
    assert all(THREAD_ID_RE.match(x.thread_id) for x in t)
    # derived from the oldest member (the lowest on the page)
    assert t[0].thread_id == expected_thread_id("الخارجية التركية", "22:34", t[1].text)
    assert t[2].thread_id == expected_thread_id("تلغراف عن مسؤول إيراني رفيع", "22:03", t[3].text)
    assert t[5].thread_id == expected_thread_id("حماس", "21:17", t[5].text)


def test_dump_shape(seed_page: ParsedPage) -> None:
    dumped = seed_page.model_dump()
    assert list(dumped) == ["articles", "ticker"]
    assert list(dumped["articles"][0]) == ["title", "body", "paragraphs"]
    assert list(dumped["ticker"][0]) == ["time", "text", "attribution", "continues_previous", "thread_id"]
    assert dumped["ticker"][5] == {
        "time": "21:17",
        "text": seed_page.ticker[5].text,
        "attribution": "حماس",
        "continues_previous": False,
        "thread_id": seed_page.ticker[5].thread_id,
    }
    assert ParsedPage.model_validate(dumped) == seed_page


def test_models_are_frozen(seed_page: ParsedPage) -> None:
    with pytest.raises(pydantic.ValidationError):
        seed_page.ticker[0].time = "00:00"  # type: ignore[misc]


def test_seed_with_crlf_parses_the_same(seed_text: str, seed_page: ParsedPage) -> None:
    assert parse_page(seed_text.replace("\n", "\r\n")) == seed_page


def test_seed_with_blank_lines_and_no_separators(seed_text: str, seed_page: ParsedPage) -> None:
    variant = "\n\n".join(line for line in seed_text.splitlines() if line.strip() != "-")
    assert parse_page(variant) == seed_page


def test_seed_with_bidi_marks(seed_text: str, seed_page: ParsedPage) -> None:
    variant = seed_text.replace("22:35", "\u200f22:35\u200f").replace("الأكثر قراءة", "\u200fالأكثر قراءة")
    assert parse_page(variant) == seed_page


# --------------------------------------------------------------------------
# Chrome
# --------------------------------------------------------------------------


def test_chrome_in_any_order_and_anywhere() -> None:
    page = parse_page(
        "\n".join(
            [
                "تابعونا",
                ARTICLE[0],
                "اقرأ أيضاً:",
                ARTICLE[1],
                "عاجل 24/7",
                "المزيد",
                "إقرأ المزيد",
                "الأكثر قراءة",
                "يتم قراءة الآن",
                ticker_block(("10:00", "الدفاع المدني: السيطرة على حريق في مستودع")),
                "شارك",
                "مواضيع ذات صلة",
                "آخر الأخبار",
                "الأكثر مشاهدة",
                "عاجل",
                "-",
                "© 2026 جميع الحقوق محفوظة",
            ]
        )
    )
    assert page.articles[0].paragraphs == ARTICLE
    assert summary(page) == [("10:00", "الدفاع المدني", False)]


def test_chrome_matched_after_normalisation() -> None:
    # Spelling variants of "اقرأ أيضاً" are all chrome.
    page = parse_page("\n".join([ARTICLE[0], "اقرأ أيضا", "إقرأ ايضاً", "اقرا ايضا", ARTICLE[1]]))
    assert page.articles[0].paragraphs == ARTICLE


def test_long_copyright_footer_is_chrome() -> None:
    footer = "© 2026 جميع الحقوق محفوظة. " + "يمنع نسخ أو إعادة نشر أي مادة من هذا الموقع دون إذن خطي مسبق " * 3
    assert len(footer) > 140
    assert parse_page("\n".join([*ARTICLE, footer])).articles[0].paragraphs == ARTICLE


def test_prose_containing_a_chrome_word_is_content() -> None:
    line = "عاجل: الرئيس يصل إلى العاصمة في زيارة رسمية."
    assert parse_page(line).articles[0].paragraphs == [line]


# --------------------------------------------------------------------------
# Ticker lines
# --------------------------------------------------------------------------


def test_continuation_with_and_without_space() -> None:
    page = parse_page(
        ticker_block(
            ("12:03", "وزارة الصحة: ارتفاع عدد الإصابات"),
            ("12:02", "وزارة الصحة: - الفرق الطبية تعمل على مدار الساعة"),
            ("12:01", "وزارة الصحة: -المستشفيات رفعت جاهزيتها"),
            ("12:00", "وزارة الصحة: – الوضع تحت السيطرة"),
        )
    )
    assert summary(page) == [
        ("12:03", "وزارة الصحة", False),
        ("12:02", "وزارة الصحة", True),
        ("12:01", "وزارة الصحة", True),
        ("12:00", "وزارة الصحة", True),
    ]
    assert [t.text for t in page.ticker[1:]] == [
        "الفرق الطبية تعمل على مدار الساعة",
        "المستشفيات رفعت جاهزيتها",
        "الوضع تحت السيطرة",
    ]
    assert groups(page) == [["12:03", "12:02", "12:01", "12:00"]]


def test_dash_inside_text_or_minus_sign_is_not_a_continuation() -> None:
    page = parse_page(
        ticker_block(
            ("12:01", "الأرصاد: -5 درجات مئوية الليلة"),
            ("12:00", "الأرصاد: أمطار - وربما ثلوج - في المرتفعات"),
        )
    )
    assert summary(page) == [("12:01", "الأرصاد", False), ("12:00", "الأرصاد", False)]
    assert page.ticker[0].text == "-5 درجات مئوية الليلة"


def test_continuation_joins_nearest_item_above_with_same_attribution() -> None:
    page = parse_page(
        ticker_block(
            ("12:05", "الخارجية: البيان الأول"),
            ("12:04", "الدفاع: خبر آخر"),
            ("12:03", "الخارجية: - تتمة البيان"),
            ("12:02", "الداخلية: - لا يوجد ما يتبعه"),
        )
    )
    assert groups(page) == [["12:05", "12:03"], ["12:04"], ["12:02"]]
    # attribution matched after normalisation (hamza, teh marbuta variants)
    page = parse_page(ticker_block(("12:05", "الرئاسة: أ"), ("12:04", "الرياسه: - ب")))
    assert groups(page) == [["12:05", "12:04"]]


def test_no_attribution() -> None:
    page = parse_page(ticker_block(("08:15", "انقطاع التيار الكهربائي عن أجزاء من العاصمة")))
    assert page.ticker == [
        ParsedTickerLine(
            time="08:15",
            text="انقطاع التيار الكهربائي عن أجزاء من العاصمة",
            attribution=None,
            continues_previous=False,
            thread_id=expected_thread_id(None, "08:15", "انقطاع التيار الكهربائي عن أجزاء من العاصمة"),
        )
    ]


def test_long_prefix_is_not_an_attribution() -> None:
    line = "قال مسؤول رفيع في الوزارة في تصريح خاص لوسائل الإعلام المحلية مساء اليوم: الاجتماع تأجل"
    page = parse_page(ticker_block(("08:15", line)))
    assert (page.ticker[0].attribution, page.ticker[0].text) == (None, line)


def test_score_colon_is_not_an_attribution() -> None:
    page = parse_page(ticker_block(("21:30", "تقدم الفريق الضيف 2:1 في الشوط الأول")))
    assert page.ticker[0].attribution is None
    page = parse_page(ticker_block(("21:30", "المدرب: النتيجة 2:1 عادلة")))
    assert (page.ticker[0].attribution, page.ticker[0].text) == ("المدرب", "النتيجة 2:1 عادلة")


def test_colon_without_sentence_keeps_line_whole() -> None:
    page = parse_page(ticker_block(("21:30", "الخارجية التركية:")))
    assert (page.ticker[0].attribution, page.ticker[0].text) == (None, "الخارجية التركية:")


@pytest.mark.parametrize("quoted", ['"حماس"', "«حماس»", "“حماس”", "»حماس«"])
def test_quoted_attribution(quoted: str) -> None:
    page = parse_page(ticker_block(("21:17", f"{quoted}: بيان جديد")))
    assert (page.ticker[0].attribution, page.ticker[0].text) == ("حماس", "بيان جديد")


def test_fullwidth_colon() -> None:
    page = parse_page(ticker_block(("21:17", "الرئاسة： بيان جديد")))
    assert (page.ticker[0].attribution, page.ticker[0].text) == ("الرئاسة", "بيان جديد")


def test_time_on_same_line_as_text() -> None:
    page = parse_page(
        "\n".join(
            [
                "عاجل",
                "22:35 الخارجية التركية: إسرائيل تلعب دور المزعزع",
                "22:34 - الخارجية التركية: - التساؤل واجب",
                "-",
                "22:30",
                "الدفاع: خبر",
            ]
        )
    )
    assert summary(page) == [
        ("22:35", "الخارجية التركية", False),
        ("22:34", "الخارجية التركية", True),
        ("22:30", "الدفاع", False),
    ]
    assert [t.text for t in page.ticker] == ["إسرائيل تلعب دور المزعزع", "التساؤل واجب", "خبر"]
    assert page.articles == []


def test_time_formats() -> None:
    page = parse_page(
        ticker_block(("٢٢:٣٥", "أ: نص"), ("۲۲:۳۰", "ب: نص"), ("9:05", "ج: نص"), ("٩:٠٠", "د: نص"))
    )
    assert [t.time for t in page.ticker] == ["22:35", "22:30", "09:05", "09:00"]


def test_invalid_clock_time_is_text() -> None:
    page = parse_page("25:99\nسطر عادي")
    assert page.ticker == []
    # not a ticker time, and not a headline either (no letters)
    assert page.articles[0].title == ""
    assert page.articles[0].paragraphs == ["25:99", "سطر عادي"]


def test_time_without_item_is_dropped() -> None:
    page = parse_page(ticker_block(("22:35", "أ: نص")) + "\n-\n22:30\n-\n22:20\nب: نص\n-\n22:10")
    assert [(t.time, t.attribution) for t in page.ticker] == [("22:35", "أ"), ("22:20", "ب")]


def test_prose_starting_with_a_time_stays_prose() -> None:
    lines = [ARTICLE[0], "10:30 صباحاً وصل الوفد إلى مقر الاجتماع وسط إجراءات أمنية مشددة.", ARTICLE[1]]
    page = parse_page("\n".join(lines))
    assert page.ticker == []
    assert page.articles[0].paragraphs == lines


def test_thread_id_stable_when_new_lines_arrive_on_top(seed_text: str, seed_page: ParsedPage) -> None:
    marker = "عاجل 24/7\n"
    newer = ticker_block(
        ("22:50", "الخارجية التركية: - تتمة جديدة فوق الخبر"),  # continuation with nothing above: own thread
        ("22:45", "الخارجية التركية: تصريح جديد"),
    )
    updated = parse_page(seed_text.replace(marker, marker + newer + "\n"))
    assert [t.time for t in updated.ticker[:2]] == ["22:50", "22:45"]
    assert updated.ticker[2:] == seed_page.ticker  # old lines: same ids, same everything
    assert len({t.thread_id for t in updated.ticker}) == 6

    # A new *first part* on top, whose continuation was already on the page:
    # the thread gains a member, its id (from the oldest member) is unchanged.
    base = parse_page(ticker_block(("12:01", "الخارجية: - تتمة"), ("12:00", "الدفاع: خبر")))
    grown = parse_page(
        ticker_block(("12:02", "الخارجية: البداية"), ("12:01", "الخارجية: - تتمة"), ("12:00", "الدفاع: خبر"))
    )
    assert groups(grown) == [["12:02", "12:01"], ["12:00"]]
    assert grown.ticker[1].thread_id == base.ticker[0].thread_id
    assert grown.ticker[0].thread_id == base.ticker[0].thread_id
    assert grown.ticker[2] == base.ticker[1]


# --------------------------------------------------------------------------
# Article
# --------------------------------------------------------------------------


def test_headline_becomes_title() -> None:
    page = parse_page("\n".join(["الوزير يفتتح مشروعاً جديداً للطاقة الشمسية", *ARTICLE]))
    article = page.articles[0]
    assert article.title == "الوزير يفتتح مشروعاً جديداً للطاقة الشمسية"
    assert article.paragraphs == ARTICLE
    assert article.body == ARTICLE[0] + "\n\n" + ARTICLE[1]


@pytest.mark.parametrize(
    "first",
    [
        "هل تنجح المفاوضات؟",  # question mark: a sentence
        'وقال الوزير: "سنواصل العمل".',  # ends with a period inside quotes
        " ".join(["كلمة"] * 21),  # too long for a headline
    ],
)
def test_non_headline_first_line_is_a_paragraph(first: str) -> None:
    page = parse_page("\n".join([first, *ARTICLE]))
    assert page.articles[0].title == ""
    assert page.articles[0].paragraphs == [first, *ARTICLE]


def test_single_short_line_is_a_paragraph_not_a_title() -> None:
    page = parse_page("الوزير يفتتح مشروعاً جديداً")
    assert page.articles[0].title == ""
    assert page.articles[0].paragraphs == ["الوزير يفتتح مشروعاً جديداً"]


def test_paragraphs_are_cleaned_but_letters_kept() -> None:
    page = parse_page("  أكّدَ   الوزيرُ\u200f أنّ الطاقـة مهمة.  \r\n\tوالثانية، هنا.")
    assert page.articles[0].paragraphs == ["أكّدَ الوزيرُ أنّ الطاقـة مهمة.", "والثانية، هنا."]


def test_prose_after_ticker_is_article_text() -> None:
    page = parse_page("\n".join([ARTICLE[0], ticker_block(("10:00", "أ: نص")), ARTICLE[1]]))
    assert page.articles[0].paragraphs == ARTICLE
    assert len(page.ticker) == 1


def test_page_without_ticker() -> None:
    page = parse_page("\n".join(["الأكثر قراءة", *ARTICLE, "شارك"]))
    assert page.ticker == []
    assert page.articles[0].paragraphs == ARTICLE


def test_page_without_article() -> None:
    page = parse_page("عاجل 24/7\n" + ticker_block(("10:00", "أ: نص")))
    assert page.articles == []
    assert len(page.ticker) == 1


@pytest.mark.parametrize("text", ["", "   ", "\n\r\n\t\n", "-\n-\n—", "\u200f\u200b"])
def test_empty_page(text: str) -> None:
    assert parse_page(text).model_dump() == {"articles": [], "ticker": []}


def test_chrome_only_page() -> None:
    text = "\n".join(["يتم قراءة الآن", "الأكثر قراءة", "عاجل 24/7", "-", "شارك", "المزيد", "تابعونا", "عاجل"])
    assert parse_page(text).model_dump() == {"articles": [], "ticker": []}


# --------------------------------------------------------------------------
# Robustness
# --------------------------------------------------------------------------


def test_never_raises_on_random_unicode() -> None:
    rng = random.Random(5)
    # Weighted towards the characters the parser reacts to.
    pieces = [
        *"\n\n\r\n -–—:：«»\"'0123456789٠١٢٣٤٥٦٧٨٩",
        "22:35",
        "9:05",
        "\n-\n",
        "عاجل",
        "الخارجية: ",
        ": -",
        "\ud800",
        "\x00",
        "\u200f",
        "\u0654",
        "ا",
        "ي",
    ]
    for _ in range(3000):
        if rng.random() < 0.5:
            text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        else:
            text = "".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(0, 40)))
        page = parse_page(text)
        for article in page.articles:
            assert article.paragraphs and all(p.strip() for p in article.paragraphs)
        for item in page.ticker:
            assert re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", item.time)
            assert item.text.strip()
            assert THREAD_ID_RE.match(item.thread_id)
            assert item.attribution is None or item.attribution.strip()
        page.model_dump_json()  # serialisable (no lone surrogates)


# --------------------------------------------------------------------------
# Bundled sample pages
# --------------------------------------------------------------------------


def sample(prefix: str) -> ParsedPage:
    (path,) = SAMPLES.glob(f"{prefix}_*.txt")
    return parse_page(path.read_text(encoding="utf-8"))


def test_samples_are_bundled() -> None:
    assert sorted(p.name[:3] for p in SAMPLES.glob("*.txt")) == ["01_", "02_", "03_", "04_"]
    assert (SAMPLES / "README.md").is_file()


def test_sample_01_energy() -> None:
    page = sample("01")
    (article,) = page.articles
    assert article.title == "تشغيل أول محطة لتخزين الكهرباء بالبطاريات في المنطقة الصناعية الجنوبية"
    assert len(article.paragraphs) == 5
    assert summary(page) == [
        ("20:45", "وزارة الطاقة", False),
        ("20:44", "وزارة الطاقة", True),  # "- " with a space
        ("20:43", "وزارة الطاقة", True),  # "-" without a space
        ("20:10", None, False),
        ("19:32", "هيئة الأرصاد", False),  # «» quoted
        ("19:05", "البنك المركزي", False),
    ]
    assert groups(page) == [["20:45", "20:44", "20:43"], ["20:10"], ["19:32"], ["19:05"]]


def test_sample_02_football() -> None:
    page = sample("02")
    (article,) = page.articles
    assert article.title == "النجوم يتأهل إلى نهائي الكأس بعد فوز مثير على الساحل"
    assert len(article.paragraphs) == 5
    assert summary(page) == [
        ("23:10", "اتحاد الكرة", False),  # "" quoted
        ("22:58", None, False),  # the "2:1" score is not an attribution colon
        ("22:40", "مدرب النجوم", False),  # Arabic-Indic digits
        ("22:39", "مدرب النجوم", True),
        ("21:05", "رابطة الدوري", False),  # time and text on one line
        ("09:30", "الاتحاد القاري لكرة القدم", False),  # H:MM
    ]
    assert groups(page) == [["23:10"], ["22:58"], ["22:40", "22:39"], ["21:05"], ["09:30"]]
    assert page.ticker[1].text == "تقدّم الواحة على الرمال 2:1 في الشوط الأول من مباراة الدوري"


def test_sample_03_diplomacy() -> None:
    page = sample("03")
    (article,) = page.articles
    # "الرئيسية" above the headline is chrome, so the headline is still first.
    assert article.title == "اختتام مؤتمر أممي حول المياه العابرة للحدود بدعوة إلى تعزيز التعاون الإقليمي"
    assert len(article.paragraphs) == 4
    assert summary(page) == [
        ("18:20", "المتحدث باسم الأمم المتحدة", False),
        ("17:45", "مفوضية اللاجئين", False),
        ("17:44", "مفوضية اللاجئين", True),
        ("17:10", "مجلس الأمن", False),
        ("16:30", None, False),
    ]
    assert groups(page) == [["18:20"], ["17:45", "17:44"], ["17:10"], ["16:30"]]


def test_sample_04_is_a_normalised_duplicate_of_01() -> None:
    p1, p4 = sample("01"), sample("04")
    a1, a4 = p1.articles[0], p4.articles[0]
    assert a1.title != a4.title
    assert a1.body != a4.body  # tatweel / shadda differences...
    assert normalize_text(a1.body) == normalize_text(a4.body)  # ...erased by normalisation
    for x, y in zip(a1.paragraphs, a4.paragraphs, strict=True):
        assert normalize_text(x) == normalize_text(y)

    # Two ticker lines repeated verbatim (same time, text, attribution, thread id).
    shared = [t for t in p4.ticker if t in p1.ticker]
    assert [t.time for t in shared] == ["20:10", "19:32"]
    assert len(p4.ticker) == 4
