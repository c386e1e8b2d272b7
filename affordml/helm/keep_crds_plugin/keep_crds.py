"""Helm post-renderer (run by helm as a plugin, with the interpreter that runs affordml): every
CustomResourceDefinition of the rendered manifest gets `helm.sh/resource-policy: keep`. `helm uninstall` reads that
policy from the release's stored manifest, not from the live object, so it has to be there from the install on."""

import sys

import yaml

POLICY = "helm.sh/resource-policy"


def keep_crds(documents: list) -> int:
    marked = 0
    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            meta = doc.setdefault("metadata", {})
            meta["annotations"] = {**(meta.get("annotations") or {}), POLICY: "keep"}
            marked += 1
    return marked


def main() -> None:
    documents = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]
    keep_crds(documents)
    yaml.safe_dump_all(documents, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
