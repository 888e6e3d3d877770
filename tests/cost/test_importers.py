"""Importers: LiteLLM's map and the Cloud Billing Catalog, as catalog entries; the diff.

The LiteLLM entries below are shaped as the published map writes them (USD per token, the
vertex_ai providers); the Billing Catalog pages as `services.skus.list` returns them
(skuId, description, category, serviceRegions, pricingInfo[].pricingExpression with
usageUnit, baseUnit, baseUnitConversionFactor and tieredRates[].unitPrice {currencyCode,
units, nanos}). Expected figures are worked out by hand."""

import pytest

from shared.cost import catalog, importers, pricing

LITELLM = {
    "sample_spec": {"litellm_provider": "one of https://docs.litellm.ai/docs/providers"},
    "gpt-5": {"litellm_provider": "openai", "input_cost_per_token": 1e-06},
    "vertex_ai/claude-opus-4": {
        "litellm_provider": "vertex_ai-anthropic_models",
        "input_cost_per_token": 1.5e-05,
    },
    "vertex_ai/gemini-3.9-flash": {
        "litellm_provider": "vertex_ai",
        "mode": "chat",
        "input_cost_per_token": 9e-07,
        "output_cost_per_token": 4.5e-06,
        "cache_read_input_token_cost": 9e-08,
        "input_cost_per_token_batches": 4.5e-07,
        "output_cost_per_token_batches": 2.25e-06,
        "output_cost_per_reasoning_token": 4.5e-06,
        "max_output_tokens": 65536,
        "regional_endpoint_uplift_multiplier": 1.1,
        "source": "https://cloud.google.com/vertex-ai/generative-ai/pricing",
    },
    "gemini-3.1-pro-preview": {
        "litellm_provider": "vertex_ai-language-models",
        "mode": "chat",
        "input_cost_per_token": 2e-06,
        "input_cost_per_token_above_200k_tokens": 4e-06,
        "output_cost_per_token": 1.2e-05,
        "output_cost_per_token_above_200k_tokens": 1.8e-05,
        "cache_read_input_token_cost": 2e-07,
        "cache_read_input_token_cost_above_200k_tokens": 4e-07,
        "input_cost_per_token_batches": 1e-06,
        "output_cost_per_token_batches": 6e-06,
        "max_output_tokens": 65536,
    },
    "gemini-2.0-flash-001": {
        "litellm_provider": "vertex_ai-language-models",
        "mode": "chat",
        "input_cost_per_token": 1.5e-07,
        "output_cost_per_token": 6e-07,
        "deprecation_date": "2026-06-01",
    },
    "vertex_ai/gemini-embedding-2": {
        "litellm_provider": "vertex_ai-embedding-models",
        "mode": "embedding",
        "input_cost_per_token": 2e-07,
        "output_cost_per_token": 0,
    },
    "gemini-no-price": {"litellm_provider": "vertex_ai-language-models", "mode": "chat"},
}


def test_litellm_reads_the_vertex_gemini_entries_only():
    found = importers.from_litellm(LITELLM, as_of="2026-12-07")
    assert sorted(found) == [
        "gemini-2.0-flash-001",
        "gemini-3.1-pro-preview",
        "gemini-3.9-flash",
        "gemini-embedding-2",
    ]
    new = found["gemini-3.9-flash"]
    # 9e-07 USD a token = 0.9 USD per 1M; batch 0.45 / 2.25
    assert new["prices"] == [
        {
            "from": None,
            "tiers": [
                {
                    "max_prompt_tokens": None,
                    "online": {"input": "0.9", "output": "4.5", "cached_input": "0.09"},
                    "batch": {"input": "0.45", "output": "2.25"},
                }
            ],
        }
    ]
    assert new["regional_uplift"] == "1.1"
    assert new["facts"]["thinks_by_default"] is True
    assert new["facts"]["max_output_tokens"] == 65536
    assert new["source_page"].startswith("https://cloud.google.com/")
    pro = found["gemini-3.1-pro-preview"]["prices"][0]["tiers"]
    assert pro[0]["max_prompt_tokens"] == 200_000
    assert pro[1]["online"] == {"input": "4", "output": "18", "cached_input": "0.4"}
    assert found["gemini-2.0-flash-001"]["facts"]["retires"] == "2026-06-01"
    assert found["gemini-embedding-2"]["prices"][0]["tiers"][0]["online"] == {
        "embedding_input": "0.2"
    }
    assert found["gemini-embedding-2"]["kind"] == "embedding"
    only = importers.from_litellm(LITELLM, as_of="2026-12-07", only={"gemini-3.9-flash"})
    assert list(only) == ["gemini-3.9-flash"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "JSON object of models"),
        (
            {"gemini-x": {"litellm_provider": "vertex_ai", "input_cost_per_token": "cheap"}},
            "not a number",
        ),
        (
            {"gemini-x": {"litellm_provider": "vertex_ai", "input_cost_per_token": -1}},
            "non-negative",
        ),
    ],
)
def test_litellm_refuses_what_it_cannot_read(document, message):
    with pytest.raises(importers.ImportError_, match=message):
        importers.from_litellm(document, as_of="2026-12-07")


def test_an_import_merges_over_the_entry_in_force_and_diffs_field_by_field():
    in_force = catalog.bundled()["models"]
    imported = importers.from_litellm(LITELLM, as_of="2026-12-07")
    proposed = importers.proposal(in_force, imported, origin="litellm")
    catalog.validate_models(proposed)
    # The bundled 3.1 Pro's facts and sources are kept; the import's origin is added.
    pro = proposed["gemini-3.1-pro-preview"]
    assert pro["facts"]["released"] == "2026-02-19"
    assert pro["sources"][-1] == "litellm" and "gemini_api_pricing_transcript" in pro["sources"]
    changes = {c["model"]: c for c in importers.diff(in_force, proposed)}
    assert changes["gemini-3.9-flash"]["status"] == "added"
    # same rates as bundled (LiteLLM's long tier has no batch rates: the bundled 2 / 9 go)
    pro_fields = {c["field"] for c in changes["gemini-3.1-pro-preview"]["changes"]}
    assert pro_fields == {"prices[0].tiers[1].batch.input", "prices[0].tiers[1].batch.output"}
    flash = changes["gemini-2.0-flash-001"]
    assert flash["status"] == "added"  # a versioned name is its own entry in an import
    again = importers.proposal(proposed, imported, origin="litellm")
    assert all(c["status"] == "unchanged" for c in importers.diff(proposed, again))


def sku(description, units="0", nanos=0, factor="1000000", regions=("global",), currency="USD"):
    return {
        "name": "services/C7E2-9256-1C43/skus/AAAA-BBBB-CCCC",
        "skuId": "AAAA-BBBB-CCCC",
        "description": description,
        "category": {
            "serviceDisplayName": "Vertex AI",
            "resourceFamily": "ApplicationServices",
            "resourceGroup": "Gemini",
            "usageType": "OnDemand",
        },
        "serviceRegions": list(regions),
        "pricingInfo": [
            {
                "effectiveTime": "2026-12-01T00:00:00Z",
                "summary": "",
                "pricingExpression": {
                    "usageUnit": "1/1000000 count" if factor != "1" else "count",
                    "usageUnitDescription": "tokens",
                    "baseUnit": "count",
                    "baseUnitDescription": "count",
                    "baseUnitConversionFactor": factor,
                    "displayQuantity": 1,
                    "tieredRates": [
                        {
                            "startUsageAmount": 0,
                            "unitPrice": {"currencyCode": currency, "units": "0", "nanos": 0},
                        },
                        {
                            "startUsageAmount": 0,
                            "unitPrice": {"currencyCode": currency, "units": units, "nanos": nanos},
                        },
                    ],
                },
                "currencyConversionRate": 1,
            }
        ],
        "serviceProviderName": "Google",
    }


def test_billing_catalog_skus_become_rates_by_their_description():
    pages = [
        {
            "skus": [
                sku("Gemini 3.9 Flash Input Text Tokens", units="1", nanos=500_000_000),
                sku("Gemini 3.9 Flash Output Text Tokens", units="9"),
                sku("Gemini 3.9 Flash Cached Input Text Tokens", nanos=150_000_000),
                sku("Gemini 3.9 Flash Batch Input Text Tokens", nanos=750_000_000),
                sku("Gemini 3.9 Flash Batch Output Text Tokens", units="4", nanos=500_000_000),
            ],
            "nextPageToken": "x",
        },
        {
            "skus": [
                # one token at a time: 2e-6 USD a count = 2 USD per 1M
                sku("Gemini 3.9 Pro Input Text Tokens", nanos=2000, factor="1"),
                sku("Gemini 3.9 Pro Output Text Tokens", nanos=12000, factor="1"),
                sku("Gemini 3.9 Pro Long Input Text Tokens", nanos=4000, factor="1"),
                sku("Gemini 3.9 Pro Input Text Tokens", units="3", regions=("us-central1",)),
                sku("Gemini 3.9 Pro Input Text Tokens", units="3", currency="EUR"),
                sku("Imagen 5 Image Output"),
                sku("Gemini 3.9 Flash Input Text Tokens", units="0"),
            ]
        },
    ]
    found, skipped = importers.from_billing_catalog(pages, as_of="2026-12-07")
    flash = found["gemini-3.9-flash"]["prices"][0]["tiers"]
    assert flash == [
        {
            "max_prompt_tokens": None,
            "online": {"input": "1.5", "output": "9", "cached_input": "0.15"},
            "batch": {"input": "0.75", "output": "4.5"},
        }
    ]
    pro = found["gemini-3.9-pro"]["prices"][0]["tiers"]
    assert pro[0] == {"max_prompt_tokens": 200_000, "online": {"input": "2", "output": "12"}}
    assert pro[1] == {"max_prompt_tokens": None, "online": {"input": "4", "output": "12"}}
    assert "Imagen 5 Image Output" in skipped
    assert skipped.count("Gemini 3.9 Pro Input Text Tokens") == 2  # regional, and not USD
    catalog.validate_models(found)


def test_an_imported_model_prices_rows_once_applied_over_the_bundled_catalog():
    found = importers.from_litellm(LITELLM, as_of="2026-12-07", only={"gemini-3.9-flash"})
    merged = catalog.overlay(catalog.bundled(), found, "op-test")
    assert merged.table["models"]["gemini-3.9-flash"]["regional_uplift"] == "1.1"
    assert "gemini-3.9-flash" not in pricing.known_models()  # nothing applied by a diff


def _priced(pricing_info) -> object:
    return importers._sku_price({"pricingInfo": pricing_info})


def _expr(rates, **extra) -> list:
    return [{"pricingExpression": {"tieredRates": rates, **extra}}]


def _rate(units=None, nanos=None, currency=None) -> dict:
    price = {}
    if units is not None:
        price["units"] = units
    if nanos is not None:
        price["nanos"] = nanos
    if currency is not None:
        price["currencyCode"] = currency
    return {"startUsageAmount": 0, "unitPrice": price}


@pytest.mark.parametrize(
    ("pricing_info", "price"),
    [
        # no conversion factor: the unit price is per base unit; no currency: USD
        (_expr([_rate(units="2")]), "2"),
        (_expr([_rate(units="3", nanos=500_000_000)], baseUnitConversionFactor=2), "1.75"),
        (_expr([_rate(nanos=250_000_000)]), "0.25"),
        (_expr([_rate(units="0"), _rate(units="1", nanos=0)]), "1"),  # the first paid tier
        (_expr([_rate(units="0")]), None),
        (_expr([_rate(units="1", currency="EUR")]), None),
        (_expr([_rate(units="x")]), None),
        (_expr([_rate(units="1", nanos="x")]), None),
        (_expr([_rate(units=True)]), None),
        (_expr([_rate(units="1")], baseUnitConversionFactor=0), None),
        (_expr([_rate(units="1")], baseUnitConversionFactor="-1"), None),
        (_expr("not a list"), None),
        (_expr(["not a rate"]), None),
        ("not a list", None),
        # a malformed first entry is skipped, the next one read
        (["junk", {"pricingExpression": "junk"}, *_expr([_rate(units="4")])], "4"),
        ([{"pricingExpression": {"baseUnitConversionFactor": "nan", "tieredRates": []}}], None),
    ],
)
def test_a_sku_price_is_read_only_from_the_published_shape(pricing_info, price):
    found = _priced(pricing_info)
    assert (None if found is None else format(found.normalize(), "f")) == price


@pytest.mark.parametrize(
    ("description", "target"),
    [
        ("Gemini 3.9 Flash Input Text Tokens", ("gemini-3.9-flash", "online", "base", "input")),
        ("Gemini 3.9 Flash Batch Output Text", ("gemini-3.9-flash", "batch", "base", "output")),
        (
            "Gemini 3.9 Flash Image Output Tokens",
            ("gemini-3.9-flash", "online", "base", "image_output"),
        ),
        ("Gemini 3.9 Flash Audio Input", ("gemini-3.9-flash", "online", "base", "audio_input")),
        (
            "Gemini 3.9 Flash Cached Audio Input",
            ("gemini-3.9-flash", "online", "base", "cached_audio_input"),
        ),
        (
            "Gemini 3.9 Flash Batch Cached Input",
            ("gemini-3.9-flash", "online", "base", "cached_input"),
        ),
        ("Gemini 3.9 Flash Cache Input", ("gemini-3.9-flash", "online", "base", "cached_input")),
        ("Gemini 3.9 Pro Long Input Text", ("gemini-3.9-pro", "online", "long", "input")),
        ("Gemini 3.9 Pro Input Text >200K", ("gemini-3.9-pro", "online", "long", "input")),
        ("Gemini 3.9 Flash-Lite Input", ("gemini-3.9-flash-lite", "online", "base", "input")),
        ("GEMINI 3.9 FLASH (Batch) Input", ("gemini-3.9-flash", "batch", "base", "input")),
        ("Gemini 4 Argon Output Images", ("gemini-4-argon", "online", "base", "image_output")),
        ("Gemini x Flash Input", None),
        ("Gemini 3.9 Input", None),
        ("Gemini 3.9 Flash Tokens", None),
        ("Imagen 5 Image Output", None),
        ("Gemini 3.9", None),
    ],
)
def test_a_sku_description_names_model_mode_tier_and_rate(description, target):
    assert importers._sku_target(description) == target


def test_per_million_is_exact_and_refuses_what_is_not_a_price():
    assert importers._per_million("1.25e-07", "w") == "0.125"
    assert importers._per_million(0, "w") == "0"
    with pytest.raises(importers.ImportError_, match="w: 'x' is not a number"):
        importers._per_million("x", "w")
    with pytest.raises(importers.ImportError_, match="not a non-negative price"):
        importers._per_million(-1, "w")
    with pytest.raises(importers.ImportError_, match="not a non-negative price"):
        importers._per_million("inf", "w")
