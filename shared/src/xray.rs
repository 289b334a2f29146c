//! The X-Ray trace header of the work in hand (`Root=1-...;Parent=...;Sampled=1`), carried from
//! where work starts (an HTTP request's `X-Amzn-Trace-Id`, the Lambda invocation's trace id, an
//! SQS message's `AWSTraceHeader`) in the write's context (`store::WriteContext`) into the outbox
//! record it writes, and from there onto the event's PutEvents entry (`TraceHeader`): one trace
//! shows a request and the event it caused.

/// The HTTP request header API Gateway (and the X-Ray SDKs) carry the trace header in.
pub const TRACE_HEADER: &str = "x-amzn-trace-id";

/// A trace header's longest accepted form (EventBridge's `TraceHeader` limit).
const MAX_LEN: usize = 500;

/// Whether `header` has the form of an X-Ray trace header (`Root=1-{8 hex}-{24 hex}`, then
/// `;key=value` fields), within EventBridge's length limit: anything else is not carried.
pub fn is_trace_header(header: &str) -> bool {
    let Some(root) = header.split(';').next().and_then(|f| f.strip_prefix("Root=1-")) else {
        return false;
    };
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid_root = matches!(root.split_once('-'), Some((time, id)) if hex(time, 8) && hex(id, 24));
    let valid_fields = header.split(';').skip(1).all(|f| {
        f.split_once('=').is_some_and(|(k, v)| {
            !k.is_empty()
                && f.bytes().all(|b| b.is_ascii_alphanumeric() || b"=-_.:".contains(&b))
                && !v.is_empty()
        })
    });
    header.len() <= MAX_LEN && valid_root && valid_fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trace_header_of_the_x_ray_form_within_eventbridge_s_limit_is_carried() {
        let h = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".to_owned();
        assert!(is_trace_header(&h));
        assert!(!is_trace_header(&format!("{h};Parent={}", "a".repeat(500))));
        for bad in [
            "Root=1-5759e988",
            "Root=1-5759e988-bd862e3fe1be46a99427279z",
            "Sampled=1",
            "Root=1-5759e988-bd862e3fe1be46a994272793;x",
        ] {
            assert!(!is_trace_header(bad), "{bad}");
        }
        assert!(is_trace_header(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0"
        ));
    }
}
