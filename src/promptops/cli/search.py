"""``promptops search``, ``promptops prompts similar``, ``promptops prompts duplicates`` and ``promptops
search-embeddings``: search through the REST API (words, meaning or both), a prompt's look-alikes, the project's
clusters of near-duplicates, and the embedding model the project's search uses."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from promptops.cli import output
from promptops.cli.common import JsonFlag, client

ModeOpt = Annotated[
    str,
    typer.Option(
        "--mode",
        "-m",
        help="hybrid (words and meaning, default), text (words only) or semantic (meaning only).",
    ),
]
ProjectOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--project",
        "-p",
        help="Search this project (name or id; repeat for several); '*' = every project you can read.",
    ),
]


def _snippet(segments: list[dict[str, Any]]) -> Text:
    text = Text()
    for segment in segments:
        text.append(segment["text"], style="bold yellow" if segment["match"] else "")
    return text


def search(
    query: Annotated[str, typer.Argument(help="Words or a description of the prompt you are looking for.")],
    mode: ModeOpt = "hybrid",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Only prompts with this tag (repeat).")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="Only versions with this label (repeat).")
    ] = None,
    project: ProjectOpt = None,
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="Also match older versions' text and commit messages.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100, help="Results to show.")] = 10,
    as_json: JsonFlag = False,
) -> None:
    """Find prompts by words and by meaning, best first, with the passage that matched."""
    data = client().get(
        "/api/v1/search",
        q=query,
        mode=mode,
        tag=tag,
        label=label,
        project=project,
        allVersions=all_versions or None,
        limit=limit,
    )
    if as_json:
        output.print_json(data)
        return
    for warning in data.get("warnings", []):
        output.echo(f"Warning: {warning}")
    if not data["items"]:
        output.echo(f"No prompt matches {query!r}.")
        return
    several = len({hit["projectId"] for hit in data["items"]}) > 1
    output.table(
        ["#", "Prompt", "Version", "Labels", "Similarity", "Snippet"],
        [
            [
                i,
                f"{hit['project']}:{hit['name']}" if several else hit["name"],
                hit["version"],
                hit["labels"],
                "" if hit["similarity"] is None else f"{hit['similarity']:.0%}",
                _snippet(hit["snippet"]),
            ]
            for i, hit in enumerate(data["items"], start=1)
        ],
    )
    if data["total"] > len(data["items"]):
        output.echo(
            f"{data['total']} prompts found; showing the best {len(data['items'])} (--limit for more)."
        )


def similar(
    name: Annotated[str, typer.Argument(help="Prompt name or id.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=50)] = 10,
    min_similarity: Annotated[
        float | None,
        typer.Option(
            "--min-similarity",
            min=0.0,
            max=1.0,
            help="Leave out prompts less similar than this (default: the embedding model's, 0.35).",
        ),
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Prompts whose latest version means about the same as this prompt's (a duplicate check)."""
    data = client().get(
        f"/api/v1/prompts/{name}/similar", limit=limit, minSimilarity=min_similarity, project=project
    )
    if as_json:
        output.print_json(data)
        return
    if not data["items"]:
        floor = "" if min_similarity is None else f"at least {min_similarity:.0%} "
        output.echo(f"No prompt is {floor}similar to {data['prompt']['name']}.")
        return
    output.table(
        ["Similarity", "Duplicate?", "Prompt", "Version", "Project", "Description"],
        [
            [
                f"{s['similarity']:.0%}",
                f"yes ({s['duplicateScore']:.2f})" if s["duplicate"] else f"no ({s['duplicateScore']:.2f})",
                s["name"],
                s["version"],
                s["project"],
                s["description"],
            ]
            for s in data["items"]
        ],
    )


def duplicates(
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            min=0.05,
            max=1.0,
            help="Duplicate score from which prompts are linked (default: the embedding model's, 0.27).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Groups of prompts in this project whose latest versions are near-duplicates of each other."""
    data = client().get("/api/v1/search/duplicates", threshold=threshold)
    if as_json:
        output.print_json(data)
        return
    if not data["clusters"]:
        output.echo(f"No near-duplicates at a duplicate score of {data['threshold']:g}.")
        return
    output.table(
        ["Cluster", "Score", "Prompts"],
        [
            [i, f"{c['score']:.2f}", [f"{p['name']}@{p['version']}" for p in c["prompts"]]]
            for i, c in enumerate(data["clusters"], start=1)
        ],
    )


embeddings_app = typer.Typer(
    help="The embedding model this project's search uses: the server's offline model (default) or one of the "
    "project's provider connections.",
    no_args_is_help=True,
)


def _print_settings(data: dict[str, Any]) -> None:
    model = data["model"] if data["source"] == "deployment" else f"{data['connection']}/{data['model']}"
    source = (
        "the server's offline model" if data["source"] == "deployment" else "the project's provider model"
    )
    output.echo(f"{model}  ({source})")
    output.echo(
        f"duplicate score from {data['duplicateScore']:g}, similar from {data['minSimilarity']:g}"
        + (f", {data['dimensions']} dimensions" if data.get("dimensions") else "")
    )
    if data["documentsWaiting"]:
        output.echo(
            f"{data['documentsWaiting']} versions wait for their vectors (embedded in the background)."
        )


@embeddings_app.command("show")
def embeddings_show(as_json: JsonFlag = False) -> None:
    """Show the model the project's search embeds prompts with."""
    data = client().get("/api/v1/search/settings")
    if as_json:
        output.print_json(data)
    else:
        _print_settings(data)


@embeddings_app.command("set")
def embeddings_set(
    connection: Annotated[
        str, typer.Option("--connection", "-c", help="A provider connection of the project that can embed.")
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Its embedding model, e.g. text-embedding-3-small.")
    ],
    duplicate_score: Annotated[
        float | None,
        typer.Option(
            "--duplicate-score", min=0.01, max=1.0, help="Near-duplicate from this score (default 0.55)."
        ),
    ] = None,
    min_similarity: Annotated[
        float | None,
        typer.Option("--min-similarity", min=0.01, max=1.0, help="Similar from this cosine (default 0.4)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Search with a provider model: checked with one call now, then every version is embedded again by it."""
    body = {
        "connection": connection,
        "model": model,
        "duplicateScore": duplicate_score,
        "minSimilarity": min_similarity,
    }
    data = client().put("/api/v1/search/settings", body)
    if as_json:
        output.print_json(data)
    else:
        _print_settings(data)


@embeddings_app.command("reset")
def embeddings_reset(as_json: JsonFlag = False) -> None:
    """Search with the server's offline model again (every version is embedded again by it)."""
    data = client().delete("/api/v1/search/settings")
    if as_json:
        output.print_json(data)
    else:
        _print_settings(data)
