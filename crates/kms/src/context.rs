//! The context every KMS call carries: who calls, from where, and — when an in-process service
//! (S3, domains) acts — which service. The wire cannot set `via_service` or `service_principal`:
//! only in-process callers construct a context with them.

use std::net::IpAddr;
use std::sync::Arc;

use crate::identity::Caller;
use crate::types::Region;

#[derive(Clone, Debug)]
pub struct CallContext {
    /// Shared with the credential cache that authenticated it: a call copies no identity data.
    pub caller: Arc<Caller>,
    /// The region from the SigV4 credential scope; each (account, region) is its own namespace.
    pub region: Region,
    pub source_ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// Also the `x-amzn-RequestId` response header and the audit record's `requestID`.
    pub request_id: String,
    /// `kms:ViaService`, e.g. `s3.us-east-1.amazonaws.com`, when a service calls on the caller's behalf.
    pub via_service: Option<String>,
    /// The service principal acting under a grant (audit `invokedBy`), e.g. `voiceid.amazonaws.com`.
    pub service_principal: Option<String>,
    /// `aws:SecureTransport`.
    pub secure_transport: bool,
}

impl CallContext {
    /// A context for a direct call over the wire.
    pub fn direct(
        caller: impl Into<Arc<Caller>>,
        region: Region,
        request_id: String,
    ) -> CallContext {
        CallContext {
            caller: caller.into(),
            region,
            source_ip: None,
            user_agent: None,
            request_id,
            via_service: None,
            service_principal: None,
            secure_transport: false,
        }
    }
}
