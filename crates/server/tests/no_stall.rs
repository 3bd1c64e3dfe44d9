//! No stall between frames: a client that only reads while CJ answers
//! (it sends nothing the server's ACKs could ride on, so its kernel
//! delays them, 40 ms on Linux) gets CJ's first frame right after the
//! `message_ack`, not when the delayed ACK finally releases it. Without
//! `TCP_NODELAY` on the server's socket every turn waited about 42 ms
//! here (Nagle's algorithm holding the second small write).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use hirecj_server::chat::protocol::ClientFrame;
use support::start_app;

#[tokio::test]
async fn cjs_first_frame_follows_the_ack_without_waiting_for_a_delayed_ack() {
    const TURNS: usize = 30;
    let app = start_app(&[
        ("HIRECJ_TURNS_PER_MINUTE_ADDRESS", "1000"),
        ("HIRECJ_TURNS_PER_MINUTE_SESSION", "1000"),
    ])
    .await;
    let cookie = app.visitor_cookie().await;
    let mut ws = app.chat(&cookie).await;
    ws.start_ad_hoc().await.unwrap();
    let mut gaps = Vec::with_capacity(TURNS);
    for t in 0..TURNS {
        ws.send(&ClientFrame::Message {
            text: "What can you do?".to_owned(),
            client_id: format!("m{t}"),
        })
        .await
        .unwrap();
        // Read only: the ack, then the first frame of CJ's turn.
        let ack = ws.next().await.unwrap();
        assert_eq!(ack.kind(), "message_ack", "{:?}", ack.json());
        let acked = Instant::now();
        let next = ws.next().await.unwrap();
        gaps.push(acked.elapsed());
        assert_ne!(next.kind(), "error", "{:?}", next.json());
        ws.until("cj_message").await.unwrap();
    }
    gaps.sort();
    let median = gaps[TURNS / 2];
    eprintln!(
        "ack → CJ's first frame: median {median:?}, slowest {:?}",
        gaps[TURNS - 1]
    );
    // The median, so one turn slowed by a busy machine does not decide; a
    // held write costs every turn its 40 ms.
    assert!(
        median <= Duration::from_millis(5),
        "CJ's first frame came {median:?} after the ack (median of {TURNS} turns)"
    );
    app.stop().await;
}
