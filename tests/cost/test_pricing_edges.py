"""Pricing at its edges: a rate of zero is free (never "unset"), figures by hand."""

from decimal import Decimal

from shared.cost.pricing import RowTokens, row_cost_nanos

ROW = RowTokens(prompt=1000, candidates=10)


def test_a_free_deployment_costs_nothing():
    free = {"input_cost_per_token": Decimal(0), "output_cost_per_token": Decimal(0)}
    assert row_cost_nanos("gemini-2.5-flash", ROW, free) == 0
    assert row_cost_nanos("gemini-2.5-flash", ROW, free, batch=False) == 0


def test_a_zero_rate_is_zero_not_unset():
    # 2.5 Flash batch: input 0.15 -> 150 nanos/token, output 1.25 -> 1250.
    free_input = {"input_cost_per_token": Decimal(0)}
    assert row_cost_nanos("gemini-2.5-flash", ROW, free_input) == 10 * 1250
    free_output = {"output_cost_per_token": Decimal(0)}
    assert row_cost_nanos("gemini-2.5-flash", ROW, free_output) == 1000 * 150


def test_a_free_embedding_deployment_costs_nothing():
    free = {"input_cost_per_token": Decimal(0), "input_cost_per_token_batches": Decimal(0)}
    tokens = RowTokens(prompt=1000, embedding=1000)
    assert row_cost_nanos("gemini-embedding-001", tokens, free) == 0


def test_a_batch_rate_without_an_online_one_prices_and_changes_nothing_unused():
    # An output rate on an embedding deployment: embeddings have no output. gemini-embedding-001
    # batch 0.12 USD per 1M tokens -> 120 nano-dollars a token.
    tokens = RowTokens(prompt=1000, embedding=1000)
    overrides = {"output_cost_per_token_batches": Decimal("1e-6")}
    assert row_cost_nanos("gemini-embedding-001", tokens, overrides) == 1000 * 120
