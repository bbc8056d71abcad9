import BackupCore
import Foundation

/// The `POST /containers/create` body that recreates a container on another image with the configuration it
/// has: its inspect document's `Config` and `HostConfig` sent back, as docker-compose and watchtower do.
/// Pure: built from JSON, no I/O.
///
/// An inspect `Config` holds the image's defaults merged in (its `Env`, `Cmd`, `Entrypoint`, `WorkingDir`,
/// `Labels`…). Those are left out, so that the recorded image's own defaults apply: a command or variable
/// the newer image introduced must not be forced onto the older one. What the container set itself (compose's
/// `environment`, `command`, `labels`) stays. The label that selects the application's containers always stays.
struct DockerCreateBody {
    /// The create body.
    var create: JSONValue
    /// Networks beyond the first, connected once the container exists (API 1.41 takes one at create).
    var extraNetworks: [(String, JSONValue)]

    /// - Parameters:
    ///   - inspect: the current container's inspect document.
    ///   - imageID: the image to create it on.
    ///   - imageConfig: the current image's `Config` (nil when that image is gone: nothing is left out then).
    ///   - keepingLabel: a label key never left out.
    static func make(from inspect: JSONValue, imageID: String, imageConfig: JSONValue?, keepingLabel: String)
        -> DockerCreateBody
    {
        var config = inspect["Config"]?.objectValue ?? [:]
        let oldID = inspect["Id"]?.stringValue ?? ""
        let shortID = String(oldID.prefix(12))

        // The hostname Docker derived from the old id (and podman's HOSTNAME variable holding it) name the old
        // container; a hostname set on purpose is kept.
        if let hostname = config["Hostname"]?.stringValue, hostname == shortID || oldID.hasPrefix(hostname) {
            config["Hostname"] = nil
            if case .array(let env)? = config["Env"] {
                config["Env"] = .array(env.filter { $0.stringValue != "HOSTNAME=\(hostname)" })
            }
        }
        let image = imageConfig?.objectValue ?? [:]
        if case .array(let env)? = config["Env"] {
            let defaults = Set((image["Env"]?.arrayValue ?? []).compactMap(\.stringValue))
            config["Env"] = .array(env.filter { !defaults.contains($0.stringValue ?? "") })
        }
        for key in ["Cmd", "Entrypoint", "WorkingDir", "User", "StopSignal", "Healthcheck", "Shell", "OnBuild"] {
            if let value = config[key], value == image[key] ?? .null || Self.isEmpty(value) { config[key] = nil }
        }
        for key in ["ExposedPorts", "Volumes"] {
            guard var members = config[key]?.objectValue else { continue }
            for (name, _) in image[key]?.objectValue ?? [:] { members[name] = nil }
            config[key] = members.isEmpty ? nil : .object(members)
        }
        if var labels = config["Labels"]?.objectValue {
            for (name, value) in image["Labels"]?.objectValue ?? [:] where name != keepingLabel && labels[name] == value
            {
                labels[name] = nil
            }
            config["Labels"] = .object(labels)
        }
        config["Image"] = .string(imageID)

        var host = inspect["HostConfig"]?.objectValue ?? [:]
        host["Binds"] = .array(Self.binds(host: host, mounts: inspect["Mounts"]))
        config["HostConfig"] = .object(host)

        // Networks: the one the network mode names (or the first by name) at create, the others connected after.
        let mode = host["NetworkMode"]?.stringValue ?? ""
        let networks = (inspect["NetworkSettings"]?["Networks"]?.objectValue ?? [:]).sorted { $0.key < $1.key }
        var extra: [(String, JSONValue)] = []
        let sharesAnother = mode == "host" || mode == "none" || mode.hasPrefix("container:") || mode.hasPrefix("ns:")
        if !sharesAnother, !networks.isEmpty {
            let primary = networks.first { $0.key == mode } ?? networks[0]
            config["NetworkingConfig"] = .object([
                "EndpointsConfig": .object([primary.key: Self.endpoint(primary.value, oldID: oldID)])
            ])
            extra = networks.filter { $0.key != primary.key }.map { ($0.key, Self.endpoint($0.value, oldID: oldID)) }
        }
        return DockerCreateBody(create: .object(config), extraNetworks: extra)
    }

    /// The binds, plus one for each volume the container had that no bind or mount names (an anonymous
    /// volume, from the image's `VOLUME`): the new container gets the same volume, not a fresh empty one.
    static func binds(host: [String: JSONValue], mounts: JSONValue?) -> [JSONValue] {
        var binds = host["Binds"]?.arrayValue ?? []
        var covered = Set(binds.compactMap { $0.stringValue?.split(separator: ":").dropFirst().first.map(String.init) })
        for mount in host["Mounts"]?.arrayValue ?? [] {
            if let target = mount["Target"]?.stringValue { covered.insert(target) }
        }
        for mount in mounts?.arrayValue ?? [] where mount["Type"]?.stringValue == "volume" {
            guard let name = mount["Name"]?.stringValue, let destination = mount["Destination"]?.stringValue,
                !covered.contains(destination)
            else { continue }
            binds.append(.string("\(name):\(destination)"))
            covered.insert(destination)
        }
        return binds
    }

    /// An endpoint's settings worth keeping: its aliases (without the old id, which the engine adds for the new
    /// one itself), its static addresses and links.
    static func endpoint(_ network: JSONValue, oldID: String) -> JSONValue {
        var endpoint: [String: JSONValue] = [:]
        if let aliases = network["Aliases"]?.arrayValue {
            let kept = aliases.filter { alias in
                guard let text = alias.stringValue else { return false }
                return !(text.count >= 12 && oldID.hasPrefix(text))
            }
            if !kept.isEmpty { endpoint["Aliases"] = .array(kept) }
        }
        for key in ["IPAMConfig", "Links"] {
            if let value = network[key], !isEmpty(value) { endpoint[key] = value }
        }
        return .object(endpoint)
    }

    static func isEmpty(_ value: JSONValue) -> Bool {
        switch value {
        case .null: true
        case .string(let text): text.isEmpty
        case .array(let items): items.isEmpty
        case .object(let members): members.isEmpty
        default: false
        }
    }
}

extension JSONValue {
    fileprivate var objectValue: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    fileprivate var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }
}
