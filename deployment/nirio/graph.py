"""Walking a NIR graph: nested graphs inlined, pass-through nodes removed, cycle-closing edges found."""

from __future__ import annotations


def _nir():
    import nir

    return nir


def flatten(graph, prefix=""):
    """Nodes and edges with nested NIRGraphs inlined (their ``input``/``output`` nodes become pass-throughs)."""
    nir = _nir()
    nodes, edges, alias_in, alias_out = {}, [], {}, {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_in, sub_out = flatten(node, full + ".")
            nodes.update(sub_nodes)
            edges += sub_edges
            ins = [n for n, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [n for n, v in node.nodes.items() if isinstance(v, nir.Output)]
            alias_in[full] = [full + "." + n for n in ins]
            alias_out[full] = [full + "." + n for n in outs]
            alias_in.update(sub_in)
            alias_out.update(sub_out)
        else:
            nodes[full] = node
    for a, b in graph.edges:
        for src in alias_out.get(prefix + a, [prefix + a]):
            for dst in alias_in.get(prefix + b, [prefix + b]):
                edges.append((src, dst))
    return nodes, edges, alias_in, alias_out


def bypass(nodes, edges, kinds):
    """Remove pass-through nodes of ``kinds`` (inner Input/Output of subgraphs), joining their edges."""
    for name in [n for n, v in nodes.items() if isinstance(v, kinds)]:
        ins = [a for a, b in edges if b == name]
        outs = [b for a, b in edges if a == name]
        if not ins or not outs:
            continue
        edges = [e for e in edges if name not in e] + [(a, b) for a in ins for b in outs]
        del nodes[name]
    return edges


def flat_graph(graph):
    """``(nodes, edges)`` of ``graph`` with subgraphs inlined and their inner Input/Output nodes removed."""
    nir = _nir()
    nodes, edges, _, _ = flatten(graph)
    return nodes, bypass(nodes, edges, (nir.Input, nir.Output))


def back_edges(names, edges, roots) -> set:
    """Edges that close a cycle: to a node on the depth-first stack, searching from ``roots`` first.

    A merge of two branches (a cross edge) is not a back edge; in a cycle ``A -> B -> A`` entered at
    ``A``, ``B -> A`` is the one back edge (recurrent, one step of delay, as snntorch's ``RLeaky``).
    """
    succ = {n: [b for a, b in edges if a == n] for n in names}
    state, back = {}, set()  # state: 1 on the stack, 2 done
    for root in list(roots) + [n for n in names if n not in roots]:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ[child])))
    return back


def predecessors(edges, name):
    return [a for a, b in edges if b == name]
