//! One private Postgres cluster per test process (never the system cluster
//! on 5432), and a fresh database per test copied from a migrated template.

use hookline_infrastructure::postgres::local::LocalPostgres;
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use std::sync::OnceLock;
use uuid::Uuid;

pub struct Cluster {
    pg: LocalPostgres,
}

const TEMPLATE: &str = "hookline_template";

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The process-wide cluster, started (and the template migrated) on first
/// use. It stops and deletes itself when the test process exits.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let dir = tempfile::Builder::new()
                    .prefix("hookline-test-")
                    .tempdir()
                    .expect("temp dir")
                    .keep();
                let pg = LocalPostgres::start_ephemeral(&dir)
                    .await
                    .expect("start the test Postgres cluster");
                pg.create_database(TEMPLATE, None)
                    .await
                    .expect("template db");
                let pool = PgPool::connect_with(pg.options(TEMPLATE))
                    .await
                    .expect("connect template");
                hookline_infrastructure::postgres::migrate(&pool)
                    .await
                    .expect("migrate template");
                pool.close().await;
                Cluster { pg }
            })
        })
        .join()
        .expect("cluster thread")
    })
}

impl Cluster {
    pub fn options(&self, database: &str) -> PgConnectOptions {
        self.pg.options(database)
    }

    pub fn url(&self, database: &str) -> String {
        self.pg.url(database)
    }
}

/// A database of its own for one test, already migrated.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

pub async fn fresh_database() -> TestDatabase {
    let cluster = cluster();
    let name = format!("t_{}", Uuid::new_v4().simple());
    let admin = PgPool::connect_with(cluster.options("postgres"))
        .await
        .expect("connect postgres db");
    sqlx::query(&format!(
        "CREATE DATABASE \"{name}\" TEMPLATE \"{TEMPLATE}\""
    ))
    .execute(&admin)
    .await
    .expect("create test database");
    admin.close().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(5)
        .connect_with(cluster.options(&name))
        .await
        .expect("connect test database");
    TestDatabase {
        url: cluster.url(&name),
        name,
        pool,
    }
}
