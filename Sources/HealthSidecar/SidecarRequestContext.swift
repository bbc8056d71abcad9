import Hummingbird
import NIOCore

/// The sidecar's request context: Hummingbird's core storage, the peer's address (for the API's log lines and
/// its brake on wrong tokens), and the client the API gate settled on.
public struct SidecarRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// Who asked, as the API names it: the peer's address, or the `X-Forwarded-For` address a trusted proxy
    /// gave. Set by `APIGate`.
    public var client = "unknown"

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The request body: each route reads a small JSON document at most.
    public var maxUploadSize: Int { APIResponse.bodyLimit }
}
