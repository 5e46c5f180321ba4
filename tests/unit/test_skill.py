from retake.skill import SKILL_VERSION, TEMPLATE_SHA256, render_skill_md, template_digest


def test_version_moves_with_the_text() -> None:
    assert template_digest() == TEMPLATE_SHA256, (
        "skill.md.tmpl changed: bump SKILL_VERSION and set TEMPLATE_SHA256 to the new digest"
    )


def test_render_has_no_placeholders_left() -> None:
    text = render_skill_md("https://tv.example", "rtmps://tv.example:1935/live")
    assert "$" not in text.replace("$RTMP_URL", "").replace("$RTMP_KEY", "").replace("$TOKEN", "")
    assert f"version: {SKILL_VERSION}" in text
    assert '"$RTMP_URL/$RTMP_KEY"' in text
