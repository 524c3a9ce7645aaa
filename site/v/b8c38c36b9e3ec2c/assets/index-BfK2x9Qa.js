const app=document.getElementById("app");app.textContent="Route: "+location.pathname;
