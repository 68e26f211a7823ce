"""Report mails as real servers write them: Postfix and Gmail DSNs (RFC 3464), Exim's
non-standard bounce, an ARF spam complaint (RFC 5965) and an RFC 2369 unsubscribe mail."""

from __future__ import annotations

ORIGINAL = ("From: Test Site <letters@news.example.org>\r\nTo: {rcpt}\r\n"
            "Subject: Test Site: 1 new\r\nMessage-ID: <feedpub.1.2.3@news.example.org>\r\n"
            "Return-Path: <{return_path}>\r\nList-Id: Test Site <weekly.news.example.org>\r\n")


def postfix_dsn(rcpt: str, to: str, *, status: str = "5.1.1", msgid: str = "A1") -> bytes:
    """A Postfix bounce to the envelope sender `to` (its VERP address)."""
    return (
        f"Return-Path: <>\r\nDelivered-To: {to}\r\nFrom: MAILER-DAEMON@mx.example.com "
        "(Mail Delivery System)\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"To: {to}\r\nMessage-ID: <20260310.{msgid}@mx.example.com>\r\n"
        "Date: Tue, 10 Mar 2026 09:00:00 +0000\r\nAuto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;"
        ' boundary="B1"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n--B1\r\n'
        "Content-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n"
        "\r\nThis is the mail system at host mx.example.com.\r\n\r\nI'm sorry to have to "
        "inform you that your message could not\r\nbe delivered to one or more recipients.\r\n"
        f"\r\n<{rcpt}>: host mail.example.com[192.0.2.1] said: 550 5.1.1\r\n"
        "    User unknown (in reply to RCPT TO command)\r\n\r\n--B1\r\n"
        "Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\nX-Postfix-Queue-ID: 4F1A2B3C\r\n"
        "Arrival-Date: Tue, 10 Mar 2026 08:59:58 +0000\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\nOriginal-Recipient: rfc822;{rcpt}\r\n"
        f"Action: failed\r\nStatus: {status}\r\nRemote-MTA: dns; mail.example.com\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{rcpt}>: Recipient address rejected: User "
        "unknown\r\n\r\n--B1\r\nContent-Description: Undelivered Message Headers\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        + ORIGINAL.format(rcpt=rcpt, return_path=to) + "\r\n--B1--\r\n"
    ).encode()


def gmail_delay(rcpt: str, to: str) -> bytes:
    """Gmail's 'Delivery Status Notification (Delay)': a temporary failure."""
    return (
        f"Delivered-To: {to}\r\nReturn-Path: <>\r\nFrom: Mail Delivery Subsystem "
        "<mailer-daemon@googlemail.com>\r\n"
        f"To: {to}\r\nAuto-Submitted: auto-replied\r\n"
        "Subject: Delivery Status Notification (Delay)\r\n"
        "Message-ID: <g.delay.1@mx.google.com>\r\nDate: Tue, 10 Mar 2026 10:00:00 -0700\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; boundary=\"G1\"; "
        "report-type=delivery-status\r\n\r\n--G1\r\nContent-Type: text/plain; "
        "charset=\"UTF-8\"\r\n\r\n** Delivery incomplete **\r\n\r\nThere was a temporary "
        f"problem delivering your message to {rcpt}. Gmail will retry for 47 more hours.\r\n"
        "\r\nThe response from the remote server was:\r\n452 4.2.2 The email account that "
        "you tried to reach is over quota.\r\n\r\n--G1\r\n"
        "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; googlemail.com\r\n"
        "Arrival-Date: Tue, 10 Mar 2026 08:00:00 -0700\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\nAction: delayed\r\nStatus: 4.2.2\r\n"
        "Diagnostic-Code: smtp; 452 4.2.2 The email account that you tried to reach is over "
        "quota.\r\nWill-Retry-Until: Thu, 12 Mar 2026 08:00:00 -0700 (PDT)\r\n\r\n--G1\r\n"
        "Content-Type: message/rfc822\r\n\r\n"
        + ORIGINAL.format(rcpt=rcpt, return_path=to) + "\r\nHello.\r\n\r\n--G1--\r\n"
    ).encode()


def exim_bounce(rcpt: str, to: str) -> bytes:
    """Exim's classic plain-text bounce (no DSN part)."""
    return (
        f"Return-path: <>\r\nEnvelope-to: {to}\r\nDelivery-date: Tue, 10 Mar 2026 09:01:00 "
        "+0000\r\nFrom: Mail Delivery System <Mailer-Daemon@exim.example.net>\r\n"
        f"To: {to}\r\nSubject: Mail delivery failed: returning message to sender\r\n"
        "Message-Id: <E1abc-0001@exim.example.net>\r\nDate: Tue, 10 Mar 2026 09:01:00 +0000"
        "\r\nAuto-Submitted: auto-replied\r\n\r\n"
        "This message was created automatically by mail delivery software.\r\n\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        f"  {rcpt}\r\n    SMTP error from remote mail server after RCPT TO:<{rcpt}>:\r\n"
        "    host mx.example.net [192.0.2.7]: 550 5.1.1 No such user here\r\n\r\n"
        "------ This is a copy of the message, including all the headers. ------\r\n\r\n"
        + ORIGINAL.format(rcpt=rcpt, return_path=to) + "\r\nHello.\r\n"
    ).encode()


def arf_complaint(rcpt: str, return_path: str) -> bytes:
    """A feedback-loop spam complaint (RFC 5965), carrying the original message."""
    return (
        "From: Feedback Loop <fbl@isp.example>\r\nTo: abuse@news.example.org\r\n"
        "Subject: FW: Test Site: 1 new\r\nMessage-ID: <fbl.1@isp.example>\r\n"
        "Date: Tue, 10 Mar 2026 11:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=feedback-report; boundary=\"F1\"\r\n"
        "\r\n--F1\r\nContent-Type: text/plain; charset=\"US-ASCII\"\r\n\r\n"
        "This is an email abuse report for an email message received from IP\r\n"
        "192.0.2.10 on Tue, 10 Mar 2026 08:00:00 +0000.\r\n\r\n--F1\r\n"
        "Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
        "User-Agent: ExampleFBL/1.0\r\nVersion: 1\r\nOriginal-Mail-From: <"
        f"{return_path}>\r\nOriginal-Rcpt-To: <{rcpt}>\r\n"
        "Arrival-Date: Tue, 10 Mar 2026 08:00:00 +0000\r\nSource-IP: 192.0.2.10\r\n\r\n"
        "--F1\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
        + ORIGINAL.format(rcpt=rcpt, return_path=return_path) + "\r\nHello.\r\n\r\n--F1--\r\n"
    ).encode()


def unsubscribe_mail(sender: str, to: str = "letters@news.example.org") -> bytes:
    """What a mail client sends for the mailto: link of List-Unsubscribe."""
    return (f"From: Someone <{sender}>\r\nTo: {to}\r\nSubject: unsubscribe\r\n"
            "Message-ID: <unsub.1@example.com>\r\nDate: Tue, 10 Mar 2026 12:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nunsubscribe\r\n").encode()


def ordinary_mail() -> bytes:
    return (b"From: Friend <friend@example.com>\r\nTo: letters@news.example.org\r\n"
            b"Subject: Great newsletter!\r\nMessage-ID: <hi.1@example.com>\r\n"
            b"Date: Tue, 10 Mar 2026 12:00:00 +0000\r\n\r\nThanks for writing it.\r\n")
