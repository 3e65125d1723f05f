"""Parses a delivery status notification (RFC 3462/3464) with Python's
`email` package and prints what a test asserts, one `key<TAB>value` per
line (line breaks in values as `\\n`):

  top.<Header>            the report's own headers
  top.content-type        its MIME type; top.report-type its parameter
  parts                   the number of MIME parts
  part.<n>.type           each part's MIME type
  human                   the first part's text
  msg.<Field>             per-message fields of message/delivery-status
  rcpt.<n>.<Field>        per-recipient fields
  returned.type           message/rfc822 or text/rfc822-headers
  returned.<Header>       headers of the returned message
  returned.body           its body (message/rfc822 only)

Exits non-zero when the message is not a well-formed report.
"""
import email
import email.policy
import sys

raw = sys.stdin.buffer.read()
msg = email.message_from_bytes(raw, policy=email.policy.compat32)
out = []


def put(key, value):
    out.append("%s\t%s" % (key, str(value).replace("\r\n", "\n").replace("\n", "\\n")))


for name, value in msg.items():
    put("top." + name, " ".join(value.split()))
put("top.content-type", msg.get_content_type())
put("top.report-type", msg.get_param("report-type"))
assert msg.is_multipart(), "a report is multipart"
parts = msg.get_payload()
put("parts", len(parts))
for i, part in enumerate(parts):
    put("part.%d.type" % i, part.get_content_type())
put("human", parts[0].get_payload(decode=True).decode("utf-8", "replace"))
status = parts[1]
assert status.get_content_type() == "message/delivery-status"
blocks = status.get_payload()
for name, value in blocks[0].items():
    put("msg." + name, value)
for n, block in enumerate(blocks[1:]):
    for name, value in block.items():
        put("rcpt.%d.%s" % (n, name), value)
put("rcpts", len(blocks) - 1)
if len(parts) > 2:
    returned = parts[2]
    put("returned.type", returned.get_content_type())
    if returned.get_content_type() == "message/rfc822":
        inner = returned.get_payload(0)
        for name, value in inner.items():
            put("returned." + name, " ".join(value.split()))
        put("returned.body", inner.get_payload())
    else:
        headers = email.message_from_string(returned.get_payload())
        for name, value in headers.items():
            put("returned." + name, " ".join(value.split()))
        put("returned.body", headers.get_payload())
print("\n".join(out))
