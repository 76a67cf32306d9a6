import ArgumentParser
import HubCLI

/// The `community-hub` executable: the command line and nothing else (`HubCLI`).
@main
enum CommunityHubMain {
    static func main() async { await CommunityHubCommand.main() }
}
