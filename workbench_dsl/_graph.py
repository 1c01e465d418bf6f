"""Graph helpers shared by the compiler's validation and the engine (no dependencies)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle in ``node -> depends-on`` edges as ``[a, b, a]``, or None.

    The cycle is reported in dependency order (a waits for b waits for a) and
    starts from the alphabetically first node on it, so messages are stable.
    """
    graph = {n: sorted(set(d)) for n, d in edges.items()}
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    for root in sorted(graph):
        if color[root] != white:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        color[root] = grey
        while stack:
            node, i = stack[-1]
            deps = graph.get(node, [])
            if i < len(deps):
                stack[-1] = (node, i + 1)
                nxt = deps[i]
                state = color.get(nxt, black)  # unknown nodes cannot be on a cycle
                if state == grey:
                    cycle = path[path.index(nxt) :]
                    k = cycle.index(min(cycle))
                    cycle = cycle[k:] + cycle[:k]
                    return [*cycle, cycle[0]]
                if state == white:
                    color[nxt] = grey
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                color[node] = black
                stack.pop()
                path.pop()
    return None


def topological_order(edges: Mapping[str, Iterable[str]]) -> list[str]:
    """Nodes so that each comes after what it depends on (ties by name)."""
    deps = {n: set(d) & set(edges) for n, d in edges.items()}
    order: list[str] = []
    ready = sorted(n for n, d in deps.items() if not d)
    done: set[str] = set()
    while ready:
        n = ready.pop(0)
        order.append(n)
        done.add(n)
        newly = [m for m, d in deps.items() if m not in done and m not in ready and d <= done]
        ready = sorted({*ready, *newly} - done)
    return order
