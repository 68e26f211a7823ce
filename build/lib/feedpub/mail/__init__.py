"""Mail: what a newsletter issue says, rendered once and filled in per recipient.

`digest` selects the articles of an issue and renders it (HTML with inlined CSS, plain text),
`message` assembles the MIME message per recipient, `tokens` signs the links in it,
`plaintext` turns HTML into readable text, `model` holds the records the store keeps,
`addresses` the address forms for the wire. Pure apart from the secret key file (`tokens`).

Never imports: feeds, site, delivery, store, jobs, web, scheduler, daemon or cli. Mail knows
no database and no transport: the store keeps its records, delivery sends its messages.
"""
