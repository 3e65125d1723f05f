//! The transcripts of the seed (sendmail Cookbook recipes 8.x and 10.14),
//! reproduced byte for byte by the server session.

mod harness;

use harness::{seed_config, seed_policy, Harness};
use postern_smtp::server::Question;
use postern_smtp::PrivacyFlags;

#[test]
fn default_privacy_offers_everything_and_answers_expn_and_vrfy() {
    let mut h = Harness::new(seed_config(), seed_policy());
    h.run(
        "S: 220 chef.wrotethebook.com ESMTP Sendmail 8.12.9/8.12.9; Mon, 10 Mar 2003 14:39:47 -0500
         C: EHLO localhost
         S: 250-chef.wrotethebook.com Hello root@localhost, pleased to meet you
         S: 250-ENHANCEDSTATUSCODES
         S: 250-PIPELINING
         S: 250-EXPN
         S: 250-VERB
         S: 250-8BITMIME
         S: 250-SIZE
         S: 250-DSN
         S: 250-ETRN
         S: 250-AUTH DIGEST-MD5 CRAM-MD5
         S: 250-DELIVERBY
         S: 250 HELP
         C: EXPN <admin>
         S: 250-2.1.5 <anna@crab.wrotethebook.com>
         S: 250-2.1.5 <andy@rodent.wrotethebook.com>
         S: 250 2.1.5 <jane@rodent.wrotethebook.com>
         C: VRFY <alana>
         S: 250 2.1.5 Alana Henson <alana@chef.wrotethebook.com>
         C: QUIT
         S: 221 2.0.0 chef.wrotethebook.com closing connection",
    );
    assert!(h.closed);
}

#[test]
fn noexpn_novrfy_noverb_noetrn_as_in_recipe_10_14() {
    let mut cfg = seed_config();
    cfg.greeting =
        "chef.wrotethebook.com Sendmail 8.12.9/8.12.9; Mon, 10 Mar 2003 14:47:35 -0500".into();
    cfg.privacy = ["noexpn", "novrfy", "noverb", "noetrn"]
        .iter()
        .map(|w| PrivacyFlags::from_word(w).unwrap())
        .fold(PrivacyFlags::PUBLIC, |a, b| a | b);
    let mut h = Harness::new(cfg, seed_policy());
    h.run(
        "S: 220 chef.wrotethebook.com ESMTP Sendmail 8.12.9/8.12.9; Mon, 10 Mar 2003 14:47:35 -0500
         C: EHLO localhost
         S: 250-chef.wrotethebook.com Hello root@localhost, pleased to meet you
         S: 250-ENHANCEDSTATUSCODES
         S: 250-PIPELINING
         S: 250-8BITMIME
         S: 250-SIZE
         S: 250-DSN
         S: 250-AUTH DIGEST-MD5 CRAM-MD5
         S: 250-DELIVERBY
         S: 250 HELP
         C: EXPN <admin>
         S: 502 5.7.0 Sorry, we do not allow this operation
         C: VRFY <alana>
         S: 252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)
         C: QUIT
         S: 221 2.0.0 chef.wrotethebook.com closing connection",
    );
    // The refused commands never reached the lookup tables.
    assert!(h
        .questions
        .iter()
        .all(|q| !matches!(q, Question::Vrfy(_) | Question::Expn(_))));
}

#[test]
fn starttls_is_advertised_when_a_certificate_is_loaded() {
    let mut cfg = seed_config();
    cfg.client = "IDENT:6l4ZhaGP3Qczqknqm/KdTFGsrBe2SCYC@localhost [127.0.0.1]".into();
    cfg.greeting =
        "chef.wrotethebook.com Sendmail 8.12.9/8.12.9; Fri, 22 Aug 2003 12:01:37 -0400".into();
    cfg.starttls = true;
    let mut h = Harness::new(cfg, seed_policy());
    h.run(
        "S: 220 chef.wrotethebook.com ESMTP Sendmail 8.12.9/8.12.9; Fri, 22 Aug 2003 12:01:37 -0400
         C: ehlo localhost
         S: 250-chef.wrotethebook.com Hello IDENT:6l4ZhaGP3Qczqknqm/KdTFGsrBe2SCYC@localhost [127.0.0.1], pleased to meet you
         S: 250-ENHANCEDSTATUSCODES
         S: 250-PIPELINING
         S: 250-EXPN
         S: 250-VERB
         S: 250-8BITMIME
         S: 250-SIZE
         S: 250-DSN
         S: 250-ETRN
         S: 250-AUTH DIGEST-MD5 CRAM-MD5
         S: 250-STARTTLS
         S: 250-DELIVERBY
         S: 250 HELP
         C: QUIT
         S: 221 2.0.0 chef.wrotethebook.com closing connection",
    );
}

#[test]
fn the_cookbook_message_is_accepted_with_its_queue_id() {
    let mut cfg = seed_config();
    cfg.client = "rodent.wrotethebook.com [192.168.0.3]".into();
    let mut h = Harness::new(cfg, seed_policy());
    h.drain();
    h.run(
        "C: EHLO rodent.wrotethebook.com
         S: 250-chef.wrotethebook.com Hello rodent.wrotethebook.com [192.168.0.3], pleased to meet you
         S: 250-ENHANCEDSTATUSCODES
         S: 250-PIPELINING
         S: 250-EXPN
         S: 250-VERB
         S: 250-8BITMIME
         S: 250-SIZE
         S: 250-DSN
         S: 250-ETRN
         S: 250-AUTH DIGEST-MD5 CRAM-MD5
         S: 250-DELIVERBY
         S: 250 HELP
         C: MAIL From:<craig@rodent.wrotethebook.com> SIZE=155
         C: RCPT To:<craig@chef.wrotethebook.com>
         C: DATA
         S: 250 2.1.0 <craig@rodent.wrotethebook.com>... Sender ok
         S: 250 2.1.5 <craig@chef.wrotethebook.com>... Recipient ok
         S: 354 Enter mail, end with \".\" on a line by itself
         C: To: craig@chef.wrotethebook.com
         C: From: craig@rodent.wrotethebook.com
         C: Subject: First STARTTLS test
         C:
         C: .
         S: 250 2.0.0 h0UGn9P7001230 Message accepted for delivery
         C: QUIT
         S: 221 2.0.0 chef.wrotethebook.com closing connection",
    );
    let (envelope, body) = &h.committed[0];
    assert_eq!(
        envelope.reverse_path.to_string(),
        "<craig@rodent.wrotethebook.com>"
    );
    assert_eq!(
        envelope.recipients[0].0.to_string(),
        "craig@chef.wrotethebook.com"
    );
    assert_eq!(envelope.protocol, "ESMTP");
    assert_eq!(envelope.mail_params.size, Some(155));
    assert_eq!(
        body.as_slice(),
        &b"To: craig@chef.wrotethebook.com\r\nFrom: craig@rodent.wrotethebook.com\r\nSubject: First STARTTLS test\r\n\r\n"[..]
    );
}
