import BackupCore
import BackupKit
import Hummingbird
import Logging
import NIOPosix
import ServiceLifecycle

/// The sidecar as one Hummingbird application: its routes, and beside the HTTP server the probe loop and the
/// liveness file as services of the same ServiceGroup. `health-sidecar --loop` runs it with `runService()`
/// (SIGTERM and SIGINT: graceful shutdown); tests call the same builder (`app.test(.router)` or `.live`).
public func buildApplication(_ context: SidecarContext) -> some ApplicationProtocol {
    let router = Router(context: SidecarRequestContext.self)
    router.addSidecarRoutes(context)
    var app = Application(
        router: router,
        // A connection that sends nothing for this long while its request is unfinished, or between requests, is
        // closed: slow clients (slowloris) cannot hold the sidecar's sockets. A request being answered (a backup
        // the API waits for) is not idle.
        server: .http1(configuration: .init(idleTimeout: .seconds(60))),
        configuration: .init(
            address: .hostname(context.configuration.bind, port: context.configuration.port),
            serverName: "health-sidecar"),
        eventLoopGroupProvider: .shared(sidecarEventLoop),
        logger: context.logger)
    app.addServices(ProbeLoopService(loop: context.probeLoop))
    if let liveness = context.liveness { app.addServices(LivenessService(liveness: liveness, logger: context.logger)) }
    app.addServices(StartupPagesService(status: context.status, logger: context.logger))
    return app
}

/// One event loop thread serves the sidecar's few requests (probes, the admin API); NIO's default, one per core,
/// would only add threads and memory. Made on first use, shared by every application of the process.
let sidecarEventLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)

/// The probe loop as a service: it ends, mid-probe if need be, when the group shuts down.
struct ProbeLoopService: Service {
    let loop: ProbeLoop

    func run() async throws {
        await cancelWhenGracefulShutdown { await loop.run() }
    }
}

/// Touches `LIVENESS_FILE` while the group runs.
struct LivenessService: Service {
    let liveness: Liveness
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown { await liveness.run(logger: logger) }
    }
}

/// Once the sidecar has started and finished its first probe round, gives back the code pages only the start
/// touched (`StartupPages`): an idle sidecar then holds the pages it uses, not every page it ever ran.
struct StartupPagesService: Service {
    let status: SidecarStatus
    let logger: Logger

    func run() async throws {
        while status.snapshot.lastIteration == nil {
            guard (try? await Task.sleep(for: .seconds(1))) != nil, !Task.isShuttingDownGracefully else { return }
        }
        let advised = ProcessSetup.releaseStartupPages()
        logger.debug("Start-up pages given back to the kernel (\(advised >> 20) MiB of read-only mappings advised)")
        // A service that returns would end the group: this one waits for the shutdown like the others.
        try? await gracefulShutdown()
    }
}
