//! A fake EC2 instance metadata service (IMDSv2) on loopback, enough for the
//! AWS SDK's instance-role credentials: the session-token `PUT`, then the
//! role's name and its temporary credentials, each `GET` carrying the token
//! (IMDSv1 requests without one get 401, as on an instance that requires
//! IMDSv2). The test replaces the credentials it hands out
//! ([`FakeImds::rotate`]), as EC2 does before the old ones expire. Point the
//! SDK at it with `AWS_EC2_METADATA_SERVICE_ENDPOINT`.

use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;

use crate::gate::TempCredentials;
use crate::http1::{serve, Request, Response};

/// The instance profile's role name.
pub const ROLE: &str = "ct-log-instance-role";

/// The session token the fake hands out (one for its whole life).
const SESSION_TOKEN: &str = "fake-imds-session-token";

struct State {
    current: TempCredentials,
    /// Access key IDs handed out, in order, one per credentials `GET`.
    served: Vec<String>,
}

/// A running fake IMDS; stops when dropped.
pub struct FakeImds {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeImds {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeImds {
    /// Starts a fake handing out `first`.
    pub async fn start(first: TempCredentials) -> FakeImds {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            current: first,
            served: Vec::new(),
        }));
        let shared = state.clone();
        let task = serve(listener, move |request| {
            let response = answer(&request, &shared);
            async move { response }
        });
        FakeImds {
            endpoint,
            state,
            task,
        }
    }

    /// From now on, hands out `next`.
    pub fn rotate(&self, next: TempCredentials) {
        self.state.lock().unwrap().current = next;
    }

    /// The access key IDs handed out so far, in order.
    pub fn served(&self) -> Vec<String> {
        self.state.lock().unwrap().served.clone()
    }
}

fn answer(request: &Request, state: &Mutex<State>) -> Response {
    const CREDENTIALS: &str = "/latest/meta-data/iam/security-credentials/";
    if request.method == "PUT" && request.target == "/latest/api/token" {
        return match request.header("x-aws-ec2-metadata-token-ttl-seconds") {
            Some(ttl) => Response::new(200, SESSION_TOKEN)
                .header("x-aws-ec2-metadata-token-ttl-seconds", ttl),
            None => Response::new(400, "missing the token TTL"),
        };
    }
    if request.header("x-aws-ec2-metadata-token") != Some(SESSION_TOKEN) {
        return Response::new(401, "");
    }
    match (
        request.method.as_str(),
        request.target.strip_prefix(CREDENTIALS),
    ) {
        ("GET", Some("")) => Response::new(200, ROLE),
        ("GET", Some(ROLE)) => {
            let mut state = state.lock().unwrap();
            let credentials = state.current.clone();
            state.served.push(credentials.access_key_id.clone());
            Response::new(200, credentials.imds_json()).header("Content-Type", "text/plain")
        }
        _ => Response::new(404, ""),
    }
}
