"""The layered layout on generated DAGs: edges go down, no overlap in a layer, and no more
crossings than the initial (topological) order, counted again here from the drawn points."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gristmill.ui.graph.layout import NODE_GAP, layered_layout, longest_path_layers


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[float], list[tuple[int, int]]]:
    count = draw(st.integers(1, 30))
    pairs = [(i, j) for i in range(count) for j in range(i + 1, count)]
    edges = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=60)) if pairs else []
    widths = draw(st.lists(st.floats(40, 200), min_size=count, max_size=count))
    return widths, sorted(edges)


def drawn_crossings(paths: list[list[tuple[float, float]]]) -> int:
    """Crossings of the drawing, pair by pair: two segments between the same two layers cross
    when their ends swap sides."""
    segments = [(a, b) for path in paths for a, b in itertools.pairwise(path)]
    total = 0
    for (a1, b1), (a2, b2) in itertools.combinations(segments, 2):
        if a1[1] == a2[1] and b1[1] == b2[1] and (a1[0] - a2[0]) * (b1[0] - b2[0]) < 0:
            total += 1
    return total


@settings(max_examples=60, deadline=None)
@given(dags())
def test_edges_go_down_and_layers_do_not_overlap(graph: tuple[list[float], list[tuple[int, int]]]) -> None:
    widths, edges = graph
    laid = layered_layout(widths, edges)
    for parent, child in edges:
        assert laid.layer[child] > laid.layer[parent]
        assert laid.y[child] > laid.y[parent]
    for path in laid.paths:
        assert all(b[1] > a[1] for a, b in itertools.pairwise(path)), "every bend is lower than the last"
    for depth in set(laid.layer.tolist()):
        members = sorted((laid.x[i], laid.width[i]) for i in range(len(widths)) if laid.layer[i] == depth)
        for (x1, w1), (x2, w2) in itertools.pairwise(members):
            assert x2 - x1 >= (w1 + w2) / 2 + NODE_GAP - 1e-6


@settings(max_examples=60, deadline=None)
@given(dags())
def test_crossings_never_exceed_the_naive_order(graph: tuple[list[float], list[tuple[int, int]]]) -> None:
    widths, edges = graph
    laid = layered_layout(widths, edges)
    assert drawn_crossings(laid.paths) == laid.crossings
    assert laid.crossings <= laid.naive_crossings


def test_a_crossing_the_initial_order_makes_is_undone() -> None:
    # a feeds d and b feeds c: in the given order (a b / c d) the two edges cross
    laid = layered_layout([60.0] * 4, [(0, 3), (1, 2)])
    assert laid.naive_crossings == 1
    assert laid.crossings == 0 == drawn_crossings(laid.paths)


def test_layers_by_longest_path_and_long_edges_bend_once_per_layer() -> None:
    laid = layered_layout([60.0] * 3, [(0, 1), (1, 2), (0, 2)])
    assert laid.layer.tolist() == [0, 1, 2]
    assert len(laid.paths[2]) == 3  # a -> c passes through layer 1


def test_a_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        longest_path_layers(2, [(0, 1), (1, 0)])


def test_an_empty_project_lays_out_to_nothing() -> None:
    laid = layered_layout([], [])
    assert len(laid.x) == 0
    assert laid.paths == []
