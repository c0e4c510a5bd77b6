//! Application identification in the packet path: asking the parsers once a session's
//! prefix grew, and acting on the answer (the application for policy, the virtual host
//! from TLS SNI or the HTTP Host header, an endpoint application update).

use super::Ctx;
use crate::app::ident::Meta;
use crate::app::parsers::{http, tls};
use crate::app::probe::Outcome;
use crate::app::{AppId, AppState};
use crate::event::{AppUpdate, Event};
use crate::flow::session::{pf, sf, NIL};

impl Ctx {
    /// Decide the session's application if its prefix has new bytes (or it is closing).
    pub(super) fn run_ident(&mut self, idx: u32, closing: bool) {
        let s = self.table.get(idx);
        if s.ident == NIL {
            return;
        }
        let server = s.server();
        let meta = Meta {
            proto: s.key.proto,
            client_port: s.client().port(),
            server_port: server.port(),
            mid_stream: s.has(sf::MID_STREAM),
        };
        let slot = s.ident;
        if s.pol.app != AppState::Pending {
            // A hook decided the application already.
            self.ident.release(slot);
            self.table.get_mut(idx).ident = NIL;
            return;
        }
        let Some(out) = self.ident.decide(slot, &meta, closing) else { return };
        let app = match out {
            Outcome::Pending(_) => return,
            Outcome::Found(app) => AppState::Known(app),
            Outcome::None => AppState::Unidentified,
        };
        if let AppState::Known(a) = app {
            self.counters.apps_identified += 1;
            let c2s = self.ident.get(slot).c2s();
            let host = match a {
                AppId::TLS => tls::sni(c2s),
                AppId::HTTP => http::host(c2s),
                _ => None,
            };
            let mut v = arrayvec::ArrayString::<{ crate::hooks::MAX_VHOST }>::new();
            for c in host.unwrap_or_default().chars().map(|c| c.to_ascii_lowercase()) {
                if v.try_push(c).is_err() {
                    break;
                }
            }
            if !v.is_empty() {
                self.store_vhost(idx, &v);
            }
            self.app_update(server, meta.proto, a);
        } else {
            self.counters.apps_unidentified += 1;
        }
        self.ident.release(slot);
        let s = self.table.get_mut(idx);
        s.ident = NIL;
        s.pol.app = app;
        s.pol.flags |= pf::REEVAL;
    }

    /// Report a server's application once (and again when it changes).
    fn app_update(&mut self, server: core::net::SocketAddr, proto: u8, app: AppId) {
        let (v6, a) = crate::endpoint::store::split(server.ip());
        let h = (a as u64 ^ (a >> 64) as u64 ^ u64::from(v6)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (u64::from(server.port()) << 8 | u64::from(proto))
                .wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        let tag = (h & !0xffff) | u64::from(app.id());
        let slot = &mut self.app_seen[(h >> 48) as usize & (4096 - 1)];
        if *slot == tag {
            return;
        }
        *slot = tag;
        self.counters.app_updates += 1;
        let ev = Event::AppUpdate(AppUpdate { time: self.now, server, proto, app });
        self.events.push(ev, &mut self.counters);
    }
}
