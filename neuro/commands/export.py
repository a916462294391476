"""``neuro export --to lava|nir NETWORK.npz``: quantize for Loihi and write the Lava graph, or write NIR."""

from __future__ import annotations

from pathlib import Path

from neuro.commands.arguments import positive_int

HELP = "export a network (Lava, NIR)"


def add_arguments(parser) -> None:
    parser.add_argument("network", help="network file (.npz written by Network.save)")
    parser.add_argument("--to", choices=("lava", "nir"), required=True, help="target format")
    parser.add_argument("-o", "--output", help="output file (default: NETWORK.lava.npz or NETWORK.nir)")
    parser.add_argument("--headroom", type=positive_int, default=16, help="Lava: threshold mantissa <= 2^17 / headroom")
    parser.add_argument("--hetero", choices=("auto", "split", "custom"), default="auto",
                        help="Lava: heterogeneous (du, dv): split into LIF sub-populations or one custom process")
    parser.add_argument("--max-groups", type=positive_int, default=8,
                        help="Lava: most LIF sub-populations per population")
    parser.add_argument("--nir-dt", type=float, default=None,
                        help="NIR: Euler step readers assume (default: the network's dt; snntorch assumes 1e-4)")


def run(args) -> int:
    from deployment.lava_export import fixed_graph, save_graph
    from deployment.nir_io import export_nir
    from deployment.quantize import quantize
    from deployment.verify import CUSTOM_WARNING
    from neuro.network import Network

    net = Network.load(args.network)
    stem = Path(args.network).with_suffix("")
    if args.to == "nir":
        out = export_nir(net, args.output or f"{stem}.nir", args.nir_dt)
        print(f"wrote {out} (NIR; reset mode, MPR, dt, refractory time and the inhibitory channel are in "
              "node metadata)")
        return 0
    fixed, report = quantize(net, args.headroom)
    print(report.table())
    empty = {p.name: ([], []) for p in net.populations if p.model != "lif"}
    graph = fixed_graph(fixed, empty, 1, args.hetero, args.max_groups)
    print(graph.describe())
    if any(g.process == "SoftResetLIF" for g in graph.groups):
        print(f"warning: {CUSTOM_WARNING}")
    out = save_graph(graph, args.output or f"{stem}.lava.npz")
    print(f"wrote {out} (Lava fixed-point process parameters; deployment.lava_export.load_graph + build_processes)")
    return 0
