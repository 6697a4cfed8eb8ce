"""The manifest check: every member present, listed once, of its SHA-256 and size."""

from __future__ import annotations

from verifier.bundle.format import FILES_PREFIX, MANIFEST, REQUIRED_MEMBERS
from verifier.bundle.model import EvidenceBundle
from verifier.bundle.reader import ZIP_ERRORS, hash_stream
from verifier.report_model import CheckList, Problems

T_MANIFEST = ("清单与成员完整性", "manifest and member integrity")


def check_manifest(b: EvidenceBundle, out: CheckList) -> None:
    """Every member is listed once in the manifest with its SHA-256 and size (after BagIt,
    RFC 8493 §2.1.3); attachment files are hashed by the attachments check instead."""
    m = b.manifest
    problems = Problems()
    members = m.get("members")
    if not isinstance(members, dict):
        out.add(
            "manifest",
            T_MANIFEST,
            "fail",
            "manifest.json has no 'members' object",
            "manifest.json 缺少 members 清单",
        )
        return
    for name in b.archive.duplicates:
        problems.add(f"{name}: appears more than once in the zip", f"{name} 在压缩包中出现多次")
    for name in REQUIRED_MEMBERS:
        if name not in members:
            problems.append(f"{name}: required member not listed in the manifest")
    present = set(b.archive.members) - {MANIFEST}
    for name in sorted(present - set(members)):
        problems.add(f"{name}: in the zip but not in the manifest", f"{name} 不在清单中")
    for name, entry in sorted(members.items()):
        info = b.archive.members.get(name)
        if info is None:
            problems.add(
                f"{name}: listed in the manifest but missing from the zip",
                f"清单列出的 {name} 在压缩包中缺失",
            )
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            problems.append(f"{name}: manifest entry needs sha256 and size")
            continue
        if entry.get("size") != info.file_size:
            problems.append(
                f"{name}: size {info.file_size} in the zip, {entry.get('size')} in the manifest"
            )
            continue
        if name.startswith(FILES_PREFIX):
            # Attachment files are hashed once, by the attachments check; here the
            # manifest entry must at least name the hash the path promises.
            if entry["sha256"] != name[len(FILES_PREFIX) :]:
                problems.append(f"{name}: manifest sha256 differs from the file's name")
            continue
        try:
            digest = hash_stream(b.archive.open(name))
        except ZIP_ERRORS as e:
            problems.append(f"{name}: cannot be read ({e})")
            continue
        if digest != entry["sha256"]:
            problems.append(
                f"{name}: SHA-256 {digest} does not match the manifest's {entry['sha256']}"
            )
    if problems:
        out.failed_on(
            "manifest",
            T_MANIFEST,
            problems,
            f"{len(problems)} member(s) do not match the manifest; first: ",
            f"{len(problems)} 个成员与清单不符；首个：",
        )
    else:
        out.passed(
            "manifest",
            T_MANIFEST,
            f"all {len(members)} members are present and match their SHA-256 and size",
            f"全部 {len(members)} 个成员齐全，SHA-256 与大小均与清单一致",
        )
