#[tokio::main]
async fn main() -> std::process::ExitCode {
    shopflow::main().await
}
