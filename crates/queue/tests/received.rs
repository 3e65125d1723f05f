use postern_queue::{received_header, ReceivedInfo, TlsLine};

const DATE: &str = "Tue, 2 Jan 2024 10:00:00 +0100";

fn smtp() -> ReceivedInfo<'static> {
    ReceivedInfo {
        helo: Some("helo.example"),
        client: "rdns.example [192.0.2.1]",
        authenticated: false,
        auth_bits: None,
        hostname: "mx.example.org",
        version: "Postern 0.1.0",
        protocol: Some("ESMTP"),
        queue_id: "12AB3cDE012345",
        tls: None,
        for_recipient: None,
        date: DATE,
    }
}

#[test]
fn tls_auth_single_recipient() {
    let info = ReceivedInfo {
        authenticated: true,
        auth_bits: Some(256),
        protocol: Some("ESMTPSA"),
        tls: Some(TlsLine {
            version: "TLSv1.3",
            cipher: "TLS_AES_256_GCM_SHA384",
            bits: 256,
            verify: "NOT",
        }),
        for_recipient: Some("<user@example.org>"),
        ..smtp()
    };
    assert_eq!(
        received_header(&info),
        "Received: from helo.example (rdns.example [192.0.2.1])\r\n\
         \t(authenticated bits=256)\r\n\
         \tby mx.example.org (Postern 0.1.0) with ESMTPSA id 12AB3cDE012345\r\n\
         \t(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=NOT)\r\n\
         \tfor <user@example.org>; Tue, 2 Jan 2024 10:00:00 +0100\r\n"
    );
}

#[test]
fn authenticated_without_ssf() {
    for (bits, shown) in [
        (None, "(authenticated)"),
        (Some(0), "(authenticated bits=0)"),
    ] {
        let info = ReceivedInfo {
            authenticated: true,
            auth_bits: bits,
            ..smtp()
        };
        let want = format!("\r\n\t{shown}\r\n\tby ");
        assert!(received_header(&info).contains(&want));
    }
    // Bits without authentication show nothing.
    let info = ReceivedInfo {
        auth_bits: Some(128),
        ..smtp()
    };
    assert!(!received_header(&info).contains("authenticated"));
}

#[test]
fn plain_esmtp_multiple_recipients() {
    assert_eq!(
        received_header(&smtp()),
        "Received: from helo.example (rdns.example [192.0.2.1])\r\n\
         \tby mx.example.org (Postern 0.1.0) with ESMTP id 12AB3cDE012345;\r\n\
         \tTue, 2 Jan 2024 10:00:00 +0100\r\n"
    );
}

#[test]
fn local_submission() {
    let info = ReceivedInfo {
        helo: None,
        client: "root@localhost",
        protocol: None,
        ..smtp()
    };
    assert_eq!(
        received_header(&info),
        "Received: (from root@localhost)\r\n\
         \tby mx.example.org (Postern 0.1.0) id 12AB3cDE012345;\r\n\
         \tTue, 2 Jan 2024 10:00:00 +0100\r\n"
    );
    let one = ReceivedInfo {
        for_recipient: Some("bob@example.org"),
        ..info
    };
    assert_eq!(
        received_header(&one),
        "Received: (from root@localhost)\r\n\
         \tby mx.example.org (Postern 0.1.0) id 12AB3cDE012345\r\n\
         \tfor bob@example.org; Tue, 2 Jan 2024 10:00:00 +0100\r\n"
    );
}

#[test]
fn no_client_leaves_the_parenthesis_out() {
    let info = ReceivedInfo {
        client: "",
        ..smtp()
    };
    assert_eq!(
        received_header(&info),
        "Received: from helo.example by mx.example.org (Postern 0.1.0) with ESMTP id 12AB3cDE012345;\r\n\
         \tTue, 2 Jan 2024 10:00:00 +0100\r\n"
    );
}

#[test]
fn injection_is_neutralised() {
    let info = ReceivedInfo {
        helo: Some("evil.example\r\nX-Evil: 1"),
        client: "rdns\n\0[192.0.2.1]\u{85}",
        for_recipient: Some("<a@b\r\nBcc: victim@example>"),
        authenticated: true,
        auth_bits: Some(1),
        tls: Some(TlsLine {
            version: "TLSv1.3\r\n",
            cipher: "X\rY",
            bits: 1,
            verify: "OK\t",
        }),
        date: "Tue, 2 Jan 2024 10:00:00 +0100\r\nX-Evil: 2",
        ..smtp()
    };
    let h = received_header(&info);
    assert_eq!(
        h,
        "Received: from evil.exampleX-Evil: 1 (rdns[192.0.2.1])\r\n\
         \t(authenticated bits=1)\r\n\
         \tby mx.example.org (Postern 0.1.0) with ESMTP id 12AB3cDE012345\r\n\
         \t(version=TLSv1.3 cipher=XY bits=1 verify=OK)\r\n\
         \tfor <a@bBcc: victim@example>; Tue, 2 Jan 2024 10:00:00 +0100X-Evil: 2\r\n"
    );
    // Every line after the first is a continuation line.
    for line in h.trim_end_matches("\r\n").split("\r\n").skip(1) {
        assert!(line.starts_with('\t'), "{line:?}");
    }
    assert_eq!(h.matches('\n').count(), h.matches("\r\n").count());
}

#[test]
fn values_are_bounded() {
    let long = "a".repeat(10_000);
    let info = ReceivedInfo {
        helo: Some(&long),
        ..smtp()
    };
    let h = received_header(&info);
    assert!(h.contains(&format!("from {} (", "a".repeat(256))));
    assert!(!h.contains(&"a".repeat(257)));
}
