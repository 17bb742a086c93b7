"""Stories on meaning (issue 14): the real encoder and stage 3's placement, no Kafka.

The same event told in Arabic and in English joins one story; two unrelated
articles sharing boilerplate or a capital city stay apart; a breaking-news
line joins the article that covers it; without vectors stage 3 behaves as
before the encoder; a restart keeps stories stable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsstream.contract.models import RawArticle, RawTickerItem
from newsstream.dedup.placement import Placement
from newsstream.dedup.stories import profile_of
from newsstream.enrich.item import enrich, enrich_batch
from newsstream.evaluation.stream_replay import Pipeline, PipelineConfig

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)

SHIP_AR = RawArticle(
    id="a_ship_ar", source="aljazeera", title="أنقرة تستدعي السفير الإسرائيلي بعد الهجوم على سفينة المساعدات",
    body="استدعت وزارة الخارجية التركية يوم الثلاثاء السفير الإسرائيلي في أنقرة احتجاجا على الهجوم الذي استهدف سفينة "
         "مساعدات إنسانية متجهة إلى قطاع غزة وأسفر عن مقتل ثلاثة ناشطين أتراك. وقال وزير الخارجية التركي إن بلاده لن "
         "تسكت على هذا الاعتداء وإنها ستلجأ إلى المحاكم الدولية لمحاسبة المسؤولين عنه.",
    published_at=T0, fetched_at=T0,
)
SHIP_EN = RawArticle(
    id="a_ship_en", source="reuters", title="Turkey summons Israeli ambassador after attack on Gaza aid ship",
    body="Turkey's foreign ministry on Tuesday summoned the Israeli ambassador in Ankara to protest an attack on a "
         "humanitarian aid ship bound for the Gaza Strip that killed three Turkish activists. The Turkish foreign "
         "minister said his country would not stay silent and would take the matter to international courts.",
    published_at=T0 + timedelta(hours=2), fetched_at=T0 + timedelta(hours=2),
)
FOOTBALL_ANKARA = RawArticle(
    id="a_football", source="aljazeera", title="أنقرة تستضيف نهائي كأس تركيا لكرة القدم",
    body="يستضيف الملعب الأولمبي في أنقرة يوم السبت المباراة النهائية لكأس تركيا بين غلطة سراي وفنربخشة، وسط توقعات "
         "بحضور جماهيري كبير. وقال الاتحاد التركي لكرة القدم إن التذاكر نفدت خلال ساعات.",
    published_at=T0 + timedelta(hours=1), fetched_at=T0 + timedelta(hours=1),
)
BOILERPLATE = "تابعونا على تويتر وفيسبوك للمزيد من الأخبار العاجلة. جميع الحقوق محفوظة للموقع."
WEATHER = RawArticle(
    id="a_weather", source="site", title="أمطار غزيرة في بيروت",
    body="شهدت العاصمة اللبنانية بيروت أمطارا غزيرة أدت إلى إغلاق عدد من الطرق. " + BOILERPLATE,
    published_at=T0, fetched_at=T0,
)
ECONOMY = RawArticle(
    id="a_economy", source="site", title="البنك المركزي المصري يرفع سعر الفائدة",
    body="قرر البنك المركزي المصري رفع أسعار الفائدة بمقدار نقطتين لمواجهة التضخم. " + BOILERPLATE,
    published_at=T0 + timedelta(minutes=30), fetched_at=T0 + timedelta(minutes=30),
)
SHIP_LINE = RawTickerItem(
    id="t_ship", source="tv", time="07:40", published_at=T0 - timedelta(minutes=20),
    text="استدعاء السفير الإسرائيلي احتجاجا على الهجوم على سفينة المساعدات المتجهة إلى غزة",
    attribution="الخارجية التركية", thread_id="th_ship", fetched_at=T0 - timedelta(minutes=20),
)


def _place(placement: Placement, *raws: RawArticle | RawTickerItem) -> dict[str, str]:
    enriched = enrich_batch(list(raws), T0, embeddings=True, article_tokens=128, ner_context_tokens=256)
    return {e.id: placement.place(e, None).enriched.enrichment.story_id for e in sorted(enriched, key=lambda e: e.raw.published_at)}


@pytest.fixture(scope="module")
def stories() -> dict[str, str]:
    return _place(Placement(), SHIP_AR, SHIP_EN, FOOTBALL_ANKARA, WEATHER, ECONOMY, SHIP_LINE)


def test_the_same_event_in_arabic_and_english_is_one_story(stories: dict[str, str]) -> None:
    assert stories["a_ship_ar"] == stories["a_ship_en"]


def test_a_shared_capital_city_or_boilerplate_does_not_make_a_story(stories: dict[str, str]) -> None:
    assert stories["a_football"] != stories["a_ship_ar"]
    assert stories["a_weather"] != stories["a_economy"]


def test_a_breaking_news_line_joins_the_article_that_covers_it(stories: dict[str, str]) -> None:
    assert stories["t_ship"] == stories["a_ship_ar"]


def test_without_vectors_stage_3_keeps_its_word_based_stories() -> None:
    placement = Placement()
    ids = {e.id: placement.place(e, None).enriched.enrichment for e in (enrich(r, T0) for r in (SHIP_AR, SHIP_EN))}
    assert all(e.embedding is None for e in ids.values())
    assert ids["a_ship_ar"].story_id != ids["a_ship_en"].story_id  # no shared words across the languages


def test_a_restarted_worker_places_a_replayed_item_in_its_story_and_goes_on_alike() -> None:
    config = PipelineConfig()
    first = Pipeline(config)
    placed = {raw.id: first.process(raw, T0).story.story_id for raw in (SHIP_AR, FOOTBALL_ANKARA)}
    restarted = Pipeline.restore(first.snapshot(), config)  # vectors rebuilt from the recovered state
    again = restarted.process(SHIP_AR, T0)
    assert again.story.story_id == placed["a_ship_ar"] and again.story.event is None  # no new story, no event
    assert restarted.process(SHIP_EN, T0).story.story_id == placed["a_ship_ar"]


BATTERY_THREAD = [
    RawTickerItem(id=f"t_battery_{n}", source="al-bilad", time=f"20:4{n}", attribution="وزارة الطاقة", thread_id="th_battery",
                  published_at=T0 + timedelta(minutes=n), fetched_at=T0 + timedelta(minutes=n), text=text)
    for n, text in enumerate([
        # As the outlet's page has them: the follow-ups ("-") are timed before the headline line.
        "حصة الطاقة المتجددة بلغت نحو 18% من الكهرباء المولّدة العام الماضي",
        "المحطة ستدعم استقرار الشبكة الوطنية خلال ساعات الذروة في أشهر الصيف",
        "بدء التشغيل التجريبي لمحطة تخزين الكهرباء بالبطاريات في المنطقة الصناعية الجنوبية",
    ])
]
BATTERY_ARTICLE = RawArticle(
    id="a_battery", source="al-bilad", title="تشغيل أول محطة لتخزين الكهرباء بالبطاريات في المنطقة الصناعية الجنوبية",
    body="أعلنت وزارة الطاقة، اليوم الأحد، بدء التشغيل التجريبي لأول محطة لتخزين الكهرباء بالبطاريات في المنطقة "
         "الصناعية الجنوبية، بقدرة تخزينية تبلغ 200 ميغاواط ساعة، في خطوة تهدف إلى دعم استقرار الشبكة الوطنية خلال "
         "ساعات الذروة.",
    published_at=T0 + timedelta(minutes=5), fetched_at=T0 + timedelta(minutes=5),
)


def test_an_article_joins_the_ticker_thread_of_its_event_though_the_threads_details_differ() -> None:
    # The thread's first line is the event; its follow-ups give details the article
    # need not resemble line by line. The thread counts once, by its best line.
    placed = _place(Placement(), *BATTERY_THREAD, BATTERY_ARTICLE)
    assert len({placed[raw.id] for raw in BATTERY_THREAD}) == 1
    assert placed["a_battery"] == placed["t_battery_2"]


def test_a_thread_whose_first_placed_line_is_a_detail_moves_to_the_story_of_its_headline_line() -> None:
    # The article first (another batch), then the thread in event time: its detail lines
    # match nothing and start a story of their own; the headline line takes the thread
    # to the article's story.
    placement = Placement()
    first = _place(placement, BATTERY_ARTICLE)
    then = _place(placement, *BATTERY_THREAD)
    assert then["t_battery_2"] == first["a_battery"]
    assert then["t_battery_0"] == then["t_battery_1"] != first["a_battery"]  # placed lines do not move


def test_an_unrelated_article_does_not_join_a_ticker_thread() -> None:
    placed = _place(Placement(), *BATTERY_THREAD, ECONOMY.model_copy(update={"published_at": T0 + timedelta(minutes=5)}))
    assert placed["a_economy"] not in {placed[raw.id] for raw in BATTERY_THREAD}


def test_with_vectors_stage_3_keeps_no_words_of_long_texts_but_keeps_a_lines_words() -> None:
    # The fitted similarity gives words no weight: postings, document frequencies and the
    # term lists of long texts were most of the state. A line keeps its words for the
    # shared-word test between two short texts.
    placement = Placement()
    _place(placement, SHIP_AR, SHIP_LINE)
    state = placement.stories.state
    assert not [key for key in state if key.startswith(("w:", "d:"))]
    profiles = {prof.item_id: prof for story in placement.stories.stories() for prof in map(profile_of, story["profiles"])}
    assert not profiles["a_ship_ar"].terms and not profiles["a_ship_ar"].entities and profiles["a_ship_ar"].n_terms >= 15
    assert profiles["t_ship"].terms and len(profiles["t_ship"].terms) == profiles["t_ship"].n_terms
