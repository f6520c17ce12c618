//! Tests of the web gateway in front of a real converter: routes through
//! the router, WebSocket frames through a real socket, and a real browser.

mod auth;
mod browser;
#[path = "../converter/reliability.rs"]
mod reliability;
mod routes;
#[path = "../converter/support.rs"]
mod support;
mod tls;
mod web;
mod websocket;
